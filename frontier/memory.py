"""What a study of a model needs in memory, from its config alone (nothing is loaded).

The figures follow the layout of the data, not a measurement:

- **weights**: every parameter at the compute dtype, on the device;
- **statistics**: per layer, the activation mean, mean |x| and variance (float64) and,
  with the refit, the fitting and held-out Gram matrices of the down projection's input
  (``2 (I+1)^2`` float64 values), in host memory (and the disk cache);
- **refit factors**: per layer, the float32 factors a trial's refit reads
  (:meth:`frontier.refit.LayerRefit.prefix`: ``2 (I+1)^2 + 3 H (I+1)`` values, or on a
  GPU the compact ``2 H (I+1)``, plus one ``(I+1)^2`` matrix per two layers, which holds
  the triangle each of them reads), on the device while they fit half its free memory,
  else in pinned host memory;
- **refit set-up**: the float64 work space of one layer's set-up, on the device, one
  layer at a time: :data:`SETUP_SQUARES` ``(I+1)^2`` matrices, the Gram and four of the
  factorisation's at its peak. The greedy OBS ranking (``obs-greedy``, the default
  criterion) runs before it in less: the Gram, and at most about three of the ridged
  Gram's Cholesky factor, its inverse and the inverse's shrinking copies.

:func:`check_host_memory` turns a study that cannot fit this machine's memory into a
one-line error before anything is computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontier.errors import FrontierError

GIB = 2**30
# float64 (I+1)^2 matrices at the peak of one layer's refit set-up: the Gram on the device
# and four of the factorisation's (benchmarks/setup_memory.py measures them on the CPU)
SETUP_SQUARES = 5


@dataclass(frozen=True)
class MemoryNeeds:
    """Bytes of each part of a study (see the module's docstring)."""

    weights: int
    statistics: int
    refit_factors: int
    refit_setup: int

    def host(self, *, factors_on_device: bool) -> int:
        """Host bytes at the peak: the statistics, plus the factors where they do not stay
        on the device."""
        return self.statistics + (0 if factors_on_device else self.refit_factors)

    def to_dict(self) -> dict[str, float]:
        return {k: round(v / GIB, 2) for k, v in vars(self).items()}


def mlp_shape(config: Any) -> tuple[int, int, int]:
    """(layers, hidden size, MLP width) of a decoder config (the text model's, for
    multimodal families)."""
    from frontier.arch import adapter_for

    cfg = adapter_for(config).decoder_config(config)
    layers = _first(cfg, "num_hidden_layers", "n_layer")
    hidden = _first(cfg, "hidden_size", "n_embd")
    width = _first(
        cfg, "intermediate_size", "ffn_dim", "ffn_hidden_size", "n_inner", default=4 * hidden
    )
    return layers, hidden, width


def _first(cfg: Any, *names: str, default: int | None = None) -> int:
    for name in names:
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    if default is None:
        raise FrontierError(f"the config has none of {', '.join(names)}")
    return default


def estimate(
    config: Any,
    dtype: str,
    *,
    refit: bool = True,
    grams: bool | None = None,
    compact: bool = False,
) -> MemoryNeeds:
    """The memory a study of ``config`` in ``dtype`` needs: ``refit`` (the default
    operator), ``grams`` (gathered for the refit or a criterion that reads them, such as
    obs; default: with the refit), ``compact`` refit factors (a GPU's)."""
    from frontier.models._load import weight_bytes

    layers, hidden, width = mlp_shape(config)
    n = width + 1
    stats = layers * 3 * width * 8
    if refit or grams:
        stats += layers * 2 * n * n * 8
    return MemoryNeeds(
        weights=weight_bytes(config, dtype),
        statistics=stats,
        refit_factors=(
            (
                ((layers + 1) // 2 * n * n + layers * 2 * hidden * n)
                if compact
                else layers * (2 * n * n + 3 * hidden * n)
            )
            * 4
            if refit
            else 0
        ),
        refit_setup=SETUP_SQUARES * n * n * 8 if refit else 0,
    )


def available_host_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_host_memory(model: str, needs: MemoryNeeds, *, factors_on_device: bool) -> None:
    """A one-line error when the study's host memory exceeds what this machine has free."""
    have = available_host_bytes()
    need = needs.host(factors_on_device=factors_on_device)
    if have is not None and need > have:
        raise FrontierError(
            f"{model} needs about {need / GIB:.1f} GiB of host memory for its calibration "
            "statistics (Gram matrices)"
            + ("" if factors_on_device or not needs.refit_factors else " and refit factors")
            + f"; {have / GIB:.1f} GiB is available: use --no-refit --criterion energy "
            "(statistics of a few MB), or a machine with more memory"
        )
