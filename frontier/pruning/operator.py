"""The pruning operator: which neurons go (a criterion's ranking), what the kept ones
become (refitted or left as they were), and the surgery that applies both.

Every trial, warm start, uniform baseline, final re-measurement and export applies plans
through one :class:`PruningOperator`, so they all measure the same thing; its
:meth:`~PruningOperator.describe` names it in protocols, reports and ``compression.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from torch import nn

from frontier import settings
from frontier._tensorfile import LayerFolder
from frontier.budget import trial_room
from frontier.errors import FrontierError
from frontier.importance import Scores
from frontier.models import LoadedModel
from frontier.pruning.placement import Refitter
from frontier.pruning.plan import Plan
from frontier.pruning.refit import DownWeights
from frontier.pruning.ridge import ALPHAS, LAMBDA_RULE, choose_alphas
from frontier.pruning.selection import Selection, Selector
from frontier.pruning.surgery import Pruner

if TYPE_CHECKING:
    from frontier.memory import Layout


def operator_name(criterion: str, refit: bool, compensate: bool = False) -> str:
    """A short name: ``energy+refit``, ``activation``, ``fluctuation+compensate``."""
    return criterion + ("+refit" if refit else "") + ("+compensate" if compensate else "")


def cached_alphas(
    lm: LoadedModel,
    scores: Scores,
    progress: Callable[[str], None] | None = None,
    *,
    proximal: bool = False,
) -> list[float]:
    """The refit's per-layer ridge strengths for ``lm`` and its calibration, chosen once
    on the held-out calibration windows and cached beside the Gram matrices. Each layer's
    errors are saved as it finishes (``.alpha.partial.json``), so a choice that was
    stopped resumes at its layer."""
    from frontier._io import write_json_atomic
    from frontier.importance import gram_cache_path

    if scores.grams is None:
        raise FrontierError("the refit needs the calibration Gram matrices")
    calib = str(scores.calibration.get("fingerprint", "none"))
    form = ".alpha-proximal.json" if proximal else ".alpha.json"
    path = gram_cache_path(lm.fingerprint, calib).with_suffix(form)
    partial = path.with_suffix(".partial.json")
    handles = lm.adapter.handles(lm.model)
    key = {"grid": list(ALPHAS), "code": _alpha_code()}
    data = _read_json(path)
    if _same(data, key) and len(data.get("alpha", [])) == len(handles):
        return [float(a) for a in data["alpha"]]
    saved = _read_json(partial)
    done = _errors_of(saved["heldout_error"]) if _same(saved, key) else []

    def keep(errors: list[dict[float, float]]) -> None:
        write_json_atomic(partial, {**key, "heldout_error": _json_errors(errors)})

    alphas, errors = choose_alphas(
        handles, scores.grams, done=done, on_layer=keep, progress=progress, proximal=proximal
    )
    write_json_atomic(path, {**key, "alpha": alphas, "heldout_error": _json_errors(errors)})
    partial.unlink(missing_ok=True)
    return alphas


def _read_json(path: Any) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _same(data: dict[str, Any], key: dict[str, Any]) -> bool:
    return all(data.get(k) == v for k, v in key.items())


def _json_errors(errors: Sequence[dict[float, float]]) -> list[dict[str, float]]:
    return [{str(k): v for k, v in e.items()} for e in errors]


def _errors_of(rows: Any) -> list[dict[float, float]]:
    """Errors read back from JSON (keys are the alphas' text); [] where malformed."""
    try:
        return [{float(k): float(v) for k, v in row.items()} for row in rows]
    except (AttributeError, TypeError, ValueError):
        return []


def _alpha_code() -> str:
    """A digest of the code that chooses the ridge strengths, whole modules (the choice
    and its constants, ``LayerRefit.__init__``, ``down_matrix``: any change there), so a
    cached choice made by other code is made again."""
    from frontier.arch import weights
    from frontier.cache import code_digest
    from frontier.pruning import refit, ridge

    return code_digest([ridge, refit, weights])


class PruningOperator:
    """Selection by one criterion's scores, the optional refit, and the surgery.

    Args:
        model: the unpruned model (cut in place while a plan is applied).
        scores: the criterion's scores; with ``refit`` they must carry the Gram matrices
            (``compute_scores(..., grams=True)``).
        refit: refit the kept down-projection columns (:mod:`frontier.pruning.refit`).
        compensate: FLAP-style mean compensation of the dropped neurons instead (into the
            down bias; the older operator, kept for comparison).
        alphas: per-layer ridge strengths; chosen on held-out calibration windows if None.
        proximal: the refit damps the kept columns toward their unpruned values instead
            of toward zero (:class:`frontier.pruning.refit.LayerRefit`).
    """

    def __init__(
        self,
        model: nn.Module,
        scores: Scores,
        *,
        refit: bool,
        compensate: bool = False,
        alphas: Sequence[float] | None = None,
        layout: Layout | None = None,
        spill: LayerFolder | None = None,
        progress: Callable[[str], None] | None = None,
        proximal: bool = False,
    ) -> None:
        if refit and compensate:
            raise FrontierError("the refit subsumes bias compensation: choose one")
        self.scores = scores
        self.selector = Selector(scores.per_layer)
        self.pruner = Pruner(model, mean_activation=scores.mean_activation)
        if self.selector.full != self.pruner.full:
            raise FrontierError("scores are for other MLP widths than this model's")
        self.compensate = compensate
        self.proximal = proximal and refit
        self.layout = layout
        self.refitter: Refitter | None = None
        if refit:
            if scores.grams is None:
                raise FrontierError("the refit needs the calibration Gram matrices")
            lean = layout is not None and layout.factor_layers < len(self.pruner.handles)
            budget = host = None
            if lean and layout is not None:
                per = layout.needs.refit_factors // max(layout.layers, 1)
                host = per * layout.factor_layers
                budget = None if self.pruner.handles[0].down_module.weight.is_cuda else host
            self.refitter = Refitter.build(
                self.pruner.handles,
                scores.grams,
                self.selector.orders,
                alphas=alphas,
                budget=budget,
                spill=spill if lean else None,
                host_budget=host,
                progress=progress,
                proximal=proximal,
            )

    @classmethod
    def for_model(
        cls,
        lm: LoadedModel,
        scores: Scores,
        *,
        refit: bool,
        compensate: bool = False,
        progress: Callable[[str], None] | None = None,
        proximal: bool = False,
    ) -> PruningOperator:
        """The operator on ``lm``, its ridge strengths from the cache when chosen before,
        its refit factors in memory where they fit the host budget and the rest on disk
        (:func:`frontier.budget.layout_for`; checked before the set-up)."""
        from frontier.budget import check_disk, layout_for
        from frontier.importance import gram_cache_path

        layout = spill = None
        if refit:
            tokens = int(scores.calibration.get("seq_len", 512)) * 4
            layout = layout_for(
                lm,
                refit=True,
                grams=True,
                batch_tokens=tokens,
                calibration_tokens=int(scores.calibration.get("tokens", 0)),
            )
            calib = str(scores.calibration.get("fingerprint", "none"))
            folder = gram_cache_path(lm.fingerprint, calib).with_suffix(
                f".{scores.criterion}{'-proximal' if proximal else ''}.factors"
            )
            spill = LayerFolder(folder)
            if layout is not None and layout.factor_layers < layout.layers:
                check_disk(folder, layout.needs.refit_factors, "its refit factors")
        alphas = cached_alphas(lm, scores, progress, proximal=proximal) if refit else None
        built = cls(
            lm.model,
            scores,
            refit=refit,
            compensate=compensate,
            alphas=alphas,
            layout=layout,
            spill=spill,
            progress=progress,
            proximal=proximal,
        )
        settings.trim_freed_memory()  # the set-up's freed heap, not kept through the trials
        return built

    @property
    def name(self) -> str:
        return operator_name(self.scores.criterion, self.refitter is not None, self.compensate)

    @property
    def full(self) -> tuple[int, ...]:
        return self.pruner.full

    @property
    def applied(self) -> bool:
        return self.pruner.applied

    def dense_plan(self, *, multiple: int = 8, floor: int = 8) -> Plan:
        return self.pruner.dense_plan(multiple=multiple, floor=floor)

    def select(self, plan: Plan) -> Selection:
        return self.selector.select(plan)

    def weights(self, selection: Selection) -> list[DownWeights | None] | None:
        """The refitted down weights for a selection this operator made (None: no refit)."""
        if self.refitter is None:
            return None
        downs = [h.down_module for h in self.pruner.handles]
        return self.refitter.weights(selection.kept, downs, self.pruner.adapter.layout)

    def apply(self, plan: Plan | Selection) -> Selection:
        """Apply ``plan``; on a GPU, the unpruned layers its pruned copies have no room
        beside are parked in host memory until :meth:`restore`."""
        selection = plan if isinstance(plan, Selection) else self.select(plan)
        refit = self.weights(selection)
        room = trial_room(self.pruner.model)
        return self.pruner.apply(selection, compensate=self.compensate, refit=refit, room=room)

    def restore(self) -> None:
        self.pruner.restore()

    @contextmanager
    def pruned(self, plan: Plan | Selection) -> Iterator[Selection]:
        """Apply ``plan`` for the duration of the block (restored even on error)."""
        selection = self.apply(plan)
        try:
            yield selection
        finally:
            self.restore()

    def describe(self) -> dict[str, Any]:
        """The operator as recorded in protocols, reports and ``compression.json``."""
        out: dict[str, Any] = {
            "name": self.name,
            "criterion": self.scores.criterion,
            "refit": self.refitter is not None,
            "compensate": self.compensate,
            "selection": "the top-scored neurons of each layer, in their original order",
        }
        if self.refitter is not None:
            out["refit_method"] = (
                "ridge least squares of the kept down-projection columns against the "
                "unpruned layer's output over the calibration activations"
                + (" (with the bias)" if any(r.has_bias for r in self.refitter.layers) else "")
            )
            out["refit_form"] = (
                "proximal: damped toward the unpruned columns, lam ||V - W_K||^2"
                if self.proximal
                else "ridge: damped toward zero, lam ||V||^2"
            )
            out["lambda_rule"] = LAMBDA_RULE
            out["alpha"] = self.refitter.alphas
        return out
