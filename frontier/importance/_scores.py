"""Scores for one model and criterion, with the calibration pass cached on disk.

The expensive part, the calibration pass, yields :class:`ActivationStats`; they are
stored as safetensors under ``$FRONTIER_HOME/importance``, keyed by the model's
fingerprint and the calibration tokens' fingerprint, and shared by every criterion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from frontier import settings
from frontier._io import write_bytes_atomic
from frontier.data.text import TokenSet
from frontier.errors import FrontierError
from frontier.importance._criteria import get_criterion
from frontier.importance._stats import ActivationStats, collect_stats
from frontier.models import LoadedModel

STATS_FORMAT = 1


@dataclass(frozen=True)
class Scores:
    """Importance of every neuron of every layer under one criterion."""

    criterion: str
    per_layer: tuple[torch.Tensor, ...]
    stats: ActivationStats | None
    calibration: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    from_cache: bool = False

    @property
    def mean_activation(self) -> tuple[torch.Tensor, ...] | None:
        return self.stats.mean if self.stats is not None else None


def _cache_path(model_fp: str, calib_fp: str) -> Path:
    return settings.home() / "importance" / f"{model_fp}-{calib_fp}-v{STATS_FORMAT}.safetensors"


def _read_cache(path: Path) -> ActivationStats | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    try:
        return ActivationStats.from_tensors(load_file(str(path)))
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as exc:
        import warnings

        warnings.warn(
            f"ignoring corrupted importance cache {path.name} ({exc}); recomputing",
            stacklevel=3,
        )
        path.unlink(missing_ok=True)
        return None


def calibrate(
    lm: LoadedModel,
    criterion: str,
    *,
    text: str = "wiki-sample",
    n_tokens: int = 16384,
    seq_len: int = 512,
    batch_size: int = 4,
) -> Scores:
    """Scores from the calibration part of ``text`` (windows of ``seq_len``, capped at the
    model's context), cached like :func:`compute_scores`."""
    from frontier.data.text import TextSource, token_windows

    tokens = token_windows(
        TextSource(text),
        "calibration",
        lm.tokenizer,
        n_tokens=n_tokens,
        seq_len=min(seq_len, lm.max_length),
    )
    return compute_scores(lm, criterion, tokens, batch_size=batch_size)


def compute_scores(
    lm: LoadedModel,
    criterion: str,
    calibration: TokenSet | None,
    *,
    batch_size: int = 4,
    use_cache: bool = True,
) -> Scores:
    """Scores for ``lm`` (unpruned) under ``criterion``; calibrates only if it needs to."""
    from safetensors.torch import save as save_bytes

    crit = get_criterion(criterion)
    adapter = lm.adapter
    handles = adapter.handles(lm.model)
    stats: ActivationStats | None = None
    info: dict[str, Any] = {}
    start = time.perf_counter()
    cached = False
    if crit.needs_calibration:
        if calibration is None:
            raise FrontierError(f"criterion {criterion!r} needs calibration text")
        info = calibration.describe()
        path = _cache_path(lm.fingerprint, calibration.fingerprint)
        stats = _read_cache(path) if use_cache else None
        cached = stats is not None
        if stats is None:
            stats = collect_stats(lm.model, adapter, calibration.ids, batch_size=batch_size)
            if use_cache:
                tensors = {k: v.contiguous() for k, v in stats.to_tensors().items()}
                write_bytes_atomic(path, save_bytes(tensors))
    scores = crit.fn(handles, stats)
    for i, s in enumerate(scores):
        if not torch.isfinite(s).all():
            raise FrontierError(f"layer {i}: non-finite importance scores ({criterion})")
    return Scores(
        criterion=criterion,
        per_layer=tuple(scores),
        stats=stats,
        calibration=info,
        seconds=time.perf_counter() - start,
        from_cache=cached,
    )
