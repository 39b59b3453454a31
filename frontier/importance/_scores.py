"""Scores for one model and criterion, with the calibration pass cached on disk.

The expensive part, the calibration pass, yields :class:`ActivationStats` and, when the
refit or a criterion needs them, the Gram matrices (:class:`GramStats`). Both are stored
as safetensors under ``$FRONTIER_HOME/importance``, keyed by the model's fingerprint and
the calibration tokens' fingerprint (the Grams in a ``.gram`` file of their own, since
they are large), and shared by every criterion. The scores of a criterion that reads the
Grams (``obs``, ``obs-greedy``: seconds to minutes of float64 linear algebra per model)
are cached too, in a ``.scores`` file per criterion keyed also by the criterion's code.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from frontier import settings
from frontier._clock import Clock
from frontier._io import write_bytes_atomic
from frontier._tensorfile import LayerFolder
from frontier.arch import MLPHandle
from frontier.data.text import TokenSet
from frontier.errors import FrontierError
from frontier.importance._criteria import Criterion, get_criterion
from frontier.importance._gram import GramStats
from frontier.importance._stats import ActivationStats, calibration_pass
from frontier.models import LoadedModel

if TYPE_CHECKING:
    from frontier.memory import Layout

STATS_FORMAT = 1
GRAM_FORMAT = 2  # 2: one file per layer, read a layer at a time


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

    @property
    def grams(self) -> GramStats | None:
        return self.stats.gram if self.stats is not None else None


def _code() -> str:
    """A digest of the code that gathers the statistics and Gram matrices, in every cache
    key: changed code never reads what the old code cached."""
    from frontier.cache import code_digest
    from frontier.importance import _gram, _stats

    return code_digest([_stats, _gram])[:8]


def _cache_path(model_fp: str, calib_fp: str) -> Path:
    name = f"{model_fp}-{calib_fp}-v{STATS_FORMAT}-{_code()}.safetensors"
    return settings.home() / "importance" / name


def gram_cache_path(model_fp: str, calib_fp: str) -> Path:
    """The folder where the Gram matrices for one model and calibration token set are
    cached, a file per layer (the ridge strengths chosen from them beside, as
    ``*.alpha.json``, and the refit's factors where they are kept on disk, as
    ``*.<criterion>.factors``)."""
    name = f"{model_fp}-{calib_fp}-v{GRAM_FORMAT}-{_code()}.grams"
    return settings.home() / "importance" / name


def _score_code(crit: Criterion) -> str | None:
    """A digest of the code behind ``crit``'s scores, in the score cache's key: the
    built-in criteria's modules, the module of a criterion registered elsewhere, and the
    statistics' code. None where that source cannot be read (nothing is cached then)."""
    import inspect

    from frontier.cache import code_digest
    from frontier.importance import _criteria, _greedy

    module = inspect.getmodule(crit.fn)
    parts: list[Any] = [_criteria, _greedy]
    if module is not _criteria:
        parts.append(module or crit.fn)
    try:
        return code_digest(parts)[:8] + _code()
    except (OSError, TypeError):
        return None


def score_cache_path(model_fp: str, calib_fp: str, crit: Criterion) -> Path | None:
    """Where one criterion's scores are cached, for criteria that read the Gram matrices
    (their scores take seconds to minutes: inverses and greedy downdates per layer)."""
    code = _score_code(crit)
    if code is None:
        return None
    name = f"{model_fp}-{calib_fp}-{crit.name}-{code}.scores.safetensors"
    return settings.home() / "importance" / name


@dataclass(frozen=True)
class _LayerScores:
    per_layer: tuple[torch.Tensor, ...]

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {str(i): s.contiguous() for i, s in enumerate(self.per_layer)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> _LayerScores:
        return cls(tuple(tensors[str(i)] for i in range(len(tensors))))


def _read_cache(path: Path, kind: type[Any] = ActivationStats) -> Any:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    try:
        return kind.from_tensors(load_file(str(path)))
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
    n_tokens: int = settings.CALIBRATION_TOKENS,
    seq_len: int = 512,
    batch_size: int = 4,
    grams: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Scores:
    """Scores from the calibration part of ``text`` (windows of ``seq_len``, capped at the
    model's context), cached like :func:`compute_scores`; ``progress`` hears about a pass."""
    from frontier.data.text import TextSource, token_windows

    tokens = token_windows(
        TextSource(text),
        "calibration",
        lm.tokenizer,
        n_tokens=n_tokens,
        seq_len=min(seq_len, lm.max_length),
    )
    return compute_scores(
        lm, criterion, tokens, batch_size=batch_size, grams=grams, progress=progress
    )


def compute_scores(
    lm: LoadedModel,
    criterion: str,
    calibration: TokenSet | None,
    *,
    batch_size: int = 4,
    use_cache: bool = True,
    grams: bool = False,
    progress: Callable[[str], None] | None = None,
    layout: Layout | None = None,
) -> Scores:
    """Scores for ``lm`` (unpruned) under ``criterion``; calibrates only if it needs to.

    With ``grams`` (or a criterion that needs them) the Gram matrices are gathered too
    and attached to ``Scores.stats``; the refit (:mod:`frontier.pruning.refit`) uses them. The
    pass holds as many layers' sums as ``layout`` says (default: what
    :func:`frontier.budget.layout_for` chooses from the host's memory, checked first).
    """
    from frontier.budget import layout_for

    crit = get_criterion(criterion)
    handles = lm.adapter.handles(lm.model)
    stats: ActivationStats | None = None
    info: dict[str, Any] = {}
    start = time.perf_counter()
    cached = False
    need_grams = grams or crit.needs_gram
    if crit.needs_calibration or need_grams:
        if calibration is None:
            raise FrontierError(f"criterion {criterion!r} needs calibration text")
        info = calibration.describe()
        if need_grams and layout is None:  # checked before the pass: one that cannot fit stops
            tokens = batch_size * calibration.ids.shape[1]
            layout = layout_for(
                lm,
                refit=grams,
                grams=True,
                batch_tokens=tokens,
                calibration_tokens=calibration.ids.numel(),
            )
        stats, cached = _stats(
            lm, calibration, batch_size, use_cache, need_grams, progress, layout=layout
        )
    spath = None
    if use_cache and crit.needs_gram and calibration is not None:
        spath = score_cache_path(lm.fingerprint, calibration.fingerprint, crit)
    hit = _read_cache(spath, _LayerScores) if spath is not None else None
    if hit is not None and len(hit.per_layer) != len(handles):
        hit = None
    if hit is not None:
        scores = list(hit.per_layer)
    else:
        partial = None if spath is None else LayerFolder(spath.with_suffix(".layers"))
        scores = _score(crit, handles, stats, progress, partial)
    for i, s in enumerate(scores):
        if not torch.isfinite(s).all():
            raise FrontierError(f"layer {i}: non-finite importance scores ({criterion})")
    if spath is not None and hit is None:
        from safetensors.torch import save as save_bytes

        write_bytes_atomic(spath, save_bytes(_LayerScores(tuple(scores)).to_tensors()))
        shutil.rmtree(spath.with_suffix(".layers"), ignore_errors=True)
    settings.trim_freed_memory()  # the pass's and the ranking's freed heap, not kept resident
    return Scores(
        criterion=criterion,
        per_layer=tuple(scores),
        stats=stats,
        calibration=info,
        seconds=time.perf_counter() - start,
        from_cache=cached,
    )


def _score(
    crit: Criterion,
    handles: list[MLPHandle],
    stats: ActivationStats | None,
    progress: Callable[[str], None] | None,
    partial: LayerFolder | None = None,
) -> list[torch.Tensor]:
    """The criterion's scores; one that reads the Grams (inverses, greedy downdates: the
    slow ones) is run a layer at a time, one layer's Gram in memory, so ``progress``
    hears about each layer and, with a ``partial`` folder, each finished layer is kept
    there: a run that was stopped scores only the layers it had not finished."""
    if not crit.needs_gram:
        return crit.fn(handles, stats)
    out: list[torch.Tensor] = []
    clock = Clock(len(handles))
    for i, h in enumerate(handles):
        if partial is not None and partial.has(i):
            out.append(partial.read(i, "scores"))
            clock.skip(1)
        else:
            out += crit.fn([h], stats)
            if partial is not None:
                partial.write(i, {"scores": out[-1]})
            clock.advance()
        if progress is not None:
            progress(f"scores ({crit.name}): layer {i + 1}/{len(handles)}{clock.eta()}")
    return out


def _stats(
    lm: LoadedModel,
    calibration: TokenSet,
    batch_size: int,
    use_cache: bool,
    grams: bool,
    progress: Callable[[str], None] | None = None,
    *,
    layout: Layout | None = None,
) -> tuple[ActivationStats, bool]:
    """The calibration statistics (and Grams when asked), from the cache or one pass.

    The Grams are cached a file per layer and read back a layer at a time; the pass
    holds the sums of as many layers as ``layout`` says (all where it is None), and a
    pass that was stopped resumes from what it had saved (:func:`calibration_pass`)."""
    from safetensors.torch import save as save_bytes

    from frontier.importance._gram import gram_bytes

    path = _cache_path(lm.fingerprint, calibration.fingerprint)
    stats: ActivationStats | None = _read_cache(path) if use_cache else None
    layers = len(lm.adapter.handles(lm.model))
    store = LayerFolder(gram_cache_path(lm.fingerprint, calibration.fingerprint))
    if use_cache and stats is not None:
        if not grams:
            return stats, True
        if all(store.has(i) for i in range(layers)):
            return dataclasses.replace(stats, gram=GramStats.on_disk(store, layers)), True

    def keep(fresh: ActivationStats) -> None:
        if use_cache:
            tensors = {k: v.contiguous() for k, v in fresh.to_tensors().items()}
            write_bytes_atomic(path, save_bytes(tensors))

    budget = None
    if layout is not None and layout.gram_layers < layers and lm.device.type != "cuda":
        budget = layout.gram_layers * gram_bytes(max(h.width for h in lm.adapter.handles(lm.model)))
    if use_cache and grams and layout is not None:
        from frontier.budget import check_disk

        check_disk(store.folder, layout.needs.statistics, "its calibration statistics")
    # cached statistics stay the ones used (the same scores as before the Grams existed)
    fresh, _ = calibration_pass(
        lm.model,
        lm.adapter,
        calibration.ids,
        batch_size=batch_size,
        grams=grams,
        progress=progress,
        gram_budget=budget,
        store=store if use_cache and grams else None,
        stats=stats,
        on_stats=keep,
    )
    return fresh, False
