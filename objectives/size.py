"""Model size: the fraction of the unpruned model's parameters a plan keeps.

Counted from the modules themselves (not from the plan), so the figure is whatever the
surgery actually produced, including biases and fused projections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from objectives._base import Direction, Measurement, Objective, not_prepared, register

if TYPE_CHECKING:
    from frontier.models import LoadedModel

#: An fp16/bf16 checkpoint stores two bytes per parameter.
FP16_BYTES = 2


@dataclass(frozen=True)
class SizeCounts:
    """Parameter counts of one model state (unique parameters: tied weights once)."""

    total: int
    mlp: int

    @property
    def fp16_bytes(self) -> int:
        """Bytes of the weights in an fp16 checkpoint (buffers and metadata not included)."""
        return FP16_BYTES * self.total


def count_sizes(lm: LoadedModel) -> SizeCounts:
    from frontier.pruning.surgery import count_mlp_parameters, count_parameters

    return SizeCounts(
        total=count_parameters(lm.model), mlp=count_mlp_parameters(lm.model, lm.adapter)
    )


@register
class Size(Objective):
    """Parameters kept, as a fraction of the unpruned model (minimised).

    ``value`` is total kept / total unpruned; ``raw`` and ``baseline`` are the two totals.
    The SLOs ``params<=P%`` and ``mlp<=M%`` read ``value`` and
    ``details["mlp_kept_fraction"]`` (see :class:`frontier.study.slo.TrialMetrics`).
    """

    name: ClassVar[str] = "params"
    direction: ClassVar[Direction] = "minimize"

    def __init__(self) -> None:
        self._baseline: SizeCounts | None = None

    def prepare(self, lm: LoadedModel) -> None:
        self._baseline = count_sizes(lm)

    def evaluate(self, lm: LoadedModel) -> Measurement:
        if self._baseline is None:
            raise not_prepared(self.name)
        base, now = self._baseline, count_sizes(lm)
        details: dict[str, Any] = {
            "total_params": now.total,
            "baseline_total_params": base.total,
            "mlp_params": now.mlp,
            "baseline_mlp_params": base.mlp,
            "mlp_kept_fraction": now.mlp / base.mlp if base.mlp else 1.0,
            "mlp_removed_fraction": 1.0 - now.mlp / base.mlp if base.mlp else 0.0,
            "fp16_bytes": now.fp16_bytes,
            "baseline_fp16_bytes": base.fp16_bytes,
        }
        return Measurement(
            name=self.name,
            value=now.total / base.total,
            direction=self.direction,
            raw=float(now.total),
            baseline=float(base.total),
            details=details,
        )

    def protocol(self) -> dict[str, Any]:
        return {
            "objective": self.name,
            "counts": "unique parameters (tied embeddings once); buffers excluded",
            "checkpoint_bytes_per_param": FP16_BYTES,
        }


__all__ = ["FP16_BYTES", "Size", "SizeCounts", "count_sizes"]
