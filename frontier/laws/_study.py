"""Laws fitted to a whole study: which points, which baseline, what each SLO allows."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from frontier.laws._fit import (
    AIC_TIE,
    Axis,
    FitResult,
    FloatArray,
    Form,
    MaxCompression,
    fit_linear,
    fit_power,
    fit_quadratic,
    max_compression,
)
from frontier.study.slo import SLO
from frontier.study.summary import Stage, StudySummary, TrialPoint, mean_retention


@dataclass(frozen=True)
class StudyFits:
    """Every law fitted to one study, and what each predicts for the study's SLOs."""

    x: Axis
    stage: Stage
    loss_quadratic: FitResult
    loss_power: FitResult
    tasks: Mapping[str, FitResult] = field(default_factory=dict)
    mean_acc: FitResult | None = None
    retention: FitResult | None = None
    limits: tuple[MaxCompression, ...] = ()
    baseline_loss: float | None = None

    @property
    def better_loss(self) -> Form | None:
        """The loss form with the lower AIC, None if either fit failed."""
        q, p = self.loss_quadratic, self.loss_power
        if not (q.ok and p.ok) or q.aic is None or p.aic is None:
            return None
        return "quadratic" if q.aic < p.aic else "power"

    def loss_verdict(self) -> str:
        """Which loss form fits better by AIC, in words."""
        q, p = self.loss_quadratic, self.loss_power
        if q.ok and p.ok and q.aic is not None and p.aic is not None:
            delta = abs(q.aic - p.aic)
            best = self.better_loss
            if delta < AIC_TIE:
                return f"quadratic and power law fit equally well (ΔAIC = {delta:.1f} < {AIC_TIE})"
            return f"{best} fits better (ΔAIC = {delta:.1f})"
        if q.ok or p.ok:
            good, bad = (q, p) if q.ok else (p, q)
            return f"only the {good.form} fit succeeded ({bad.form}: {bad.reason})"
        return f"neither loss fit succeeded ({q.reason}; {p.reason})"

    def describe(self) -> str:
        n_tasks = sum(f.ok for f in self.tasks.values())
        return (
            f"{self.stage} fits vs {self.x} removed: {self.loss_verdict()}; "
            f"{n_tasks}/{len(self.tasks)} task lines fitted; {len(self.limits)} SLO limits"
        )


def _loss_bound(slo: SLO, baseline_loss: float) -> float:
    # ppl ratio = exp(L − L_base), so ppl < t  <=>  L < L_base + ln t.
    return baseline_loss + math.log(slo.threshold)


def _limits_for(
    slo: SLO,
    fits: StudyFits,
    baseline_tasks: Mapping[str, float],
) -> list[MaxCompression]:
    text = str(slo)
    if slo.metric == "ppl":
        assert fits.baseline_loss is not None
        bound = _loss_bound(slo, fits.baseline_loss)
        return [
            max_compression(f, bound, upper=True, slo=text)
            for f in (fits.loss_quadratic, fits.loss_power)
        ]
    if slo.metric in ("params", "mlp"):
        return [
            MaxCompression(
                text,
                "-",
                "n/a",
                reason=(
                    f"a size bound: it asks for at least {100 - slo.threshold:.4g}% of the "
                    f"{'MLP ' if slo.metric == 'mlp' else ''}parameters removed, no maximum"
                ),
            )
        ]
    if slo.metric == "kl":
        return [MaxCompression(text, "-", "n/a", reason="KL divergence is not fitted")]
    if slo.metric == "tasks":
        fit = fits.retention if slo.relative else fits.mean_acc
        bound = slo.threshold / 100 if slo.relative else slo.threshold
        if fit is None:
            return [MaxCompression(text, "-", "n/a", reason="no task was measured")]
        return [max_compression(fit, bound, upper=False, slo=text)]
    task_fit = fits.tasks.get(slo.metric)
    if task_fit is None:
        return [MaxCompression(text, "-", "n/a", reason=f"task {slo.metric} was not measured")]
    if slo.relative:
        base = baseline_tasks.get(slo.metric)
        if base is None:
            return [MaxCompression(text, "-", "n/a", reason=f"no baseline for {slo.metric}")]
        return [max_compression(task_fit, slo.threshold / 100 * base, upper=False, slo=text)]
    return [max_compression(task_fit, slo.threshold, upper=False, slo=text)]


# -- a whole study ------------------------------------------------------------------------
def removed(point: TrialPoint, x: Axis) -> float:
    """The point's fraction removed on axis ``x``."""
    return point.mlp_removed if x == "mlp" else point.params_removed


def _series(
    points: Sequence[TrialPoint], x: Axis, value: Callable[[TrialPoint], float | None]
) -> tuple[FloatArray, FloatArray, str | None]:
    """(r, y) over points where ``value`` is measured and finite; a note on what was dropped.

    Unmeasured (None) values are simply absent; non-finite ones (a broken model's loss)
    are dropped and counted, since one inf would otherwise sink the whole fit.
    """
    rs: list[float] = []
    ys: list[float] = []
    dropped = 0
    for p in points:
        v = value(p)
        if v is None:
            continue
        if not math.isfinite(v):
            dropped += 1
            continue
        rs.append(removed(p, x))
        ys.append(v)
    note = f"{dropped} point(s) with a non-finite value left out" if dropped else None
    return np.array(rs, dtype=float), np.array(ys, dtype=float), note


def _task_accuracy(task: str) -> Callable[[TrialPoint], float | None]:
    return lambda p: p.tasks.get(task)


def _mean_acc(point: TrialPoint, names: Sequence[str]) -> float | None:
    if not names or any(t not in point.tasks for t in names):
        return None
    return sum(point.tasks[t] for t in names) / len(names)


def _baseline_loss_for(summary: StudySummary, points: Sequence[TrialPoint], stage: Stage) -> float:
    """The unpruned loss on the same text as ``points``' loss.

    Final points are on held-out text, whose unpruned loss follows from any final point
    as ``loss − ln(ppl ratio)``; the median guards against rounding in stored figures.
    """
    if stage == "search":
        return summary.baseline_loss
    implied = [
        p.loss - math.log(p.ppl_ratio)
        for p in points
        if p.loss is not None
        and p.ppl_ratio is not None
        and math.isfinite(p.loss)
        and math.isfinite(p.ppl_ratio)
        and p.ppl_ratio > 0
    ]
    return float(np.median(implied)) if implied else summary.baseline_loss


def _baseline_point(summary: StudySummary, full: tuple[int, ...]) -> TrialPoint:
    return TrialPoint(
        number=-1,
        mlp_removed=0.0,
        params_removed=0.0,
        loss=summary.baseline_loss,
        ppl_ratio=1.0,
        tasks=summary.baseline_tasks,
        feasible=True,
        pareto=False,
        chosen=False,
        widths=full,
        full=full,
        stage="search",
    )


def fit_study(
    summary: StudySummary,
    *,
    x: Axis = "mlp",
    stage: Stage = "search",
    include_baseline: bool = True,
) -> StudyFits:
    """Fit every law to a study's points and solve each SLO for its largest compression.

    ``stage="search"`` uses every trial's search-time figures (many points, the SLOs'
    own text); ``"final"`` the report-fidelity re-measurements of the Pareto set.
    ``include_baseline`` adds the unpruned model as the point r = 0 (search stage only:
    it was measured on the search text and documents). Samplers rarely propose r near 0,
    and without it the intercepts, which the SLO bounds are relative to, float free.
    """
    points: tuple[TrialPoint, ...] = summary.points if stage == "search" else summary.final
    base_loss = _baseline_loss_for(summary, points, stage)
    base_tasks = (
        summary.baseline_tasks_final
        if stage == "final" and summary.baseline_tasks_final
        else summary.baseline_tasks
    )
    if include_baseline and stage == "search" and points:
        points = (_baseline_point(summary, points[0].full), *points)

    r, y, note = _series(points, x, lambda p: p.loss)
    quad = fit_quadratic(r, y, target="loss", x=x, note=note)
    power = fit_power(r, y, target="loss", x=x, note=note)

    tasks: dict[str, FitResult] = {}
    for task in summary.task_names:
        r, y, note = _series(points, x, _task_accuracy(task))
        tasks[task] = fit_linear(r, y, target=task, x=x, note=note)

    names = sorted(t for t, b in base_tasks.items() if b > 0)
    mean_acc = ret = None
    if names:
        r, y, note = _series(points, x, lambda p: _mean_acc(p, names))
        mean_acc = fit_linear(r, y, target="mean_acc", x=x, note=note)
        r, y, note = _series(points, x, lambda p: mean_retention(p, base_tasks))
        ret = fit_linear(r, y, target="retention", x=x, note=note)

    fits = StudyFits(
        x=x,
        stage=stage,
        loss_quadratic=quad,
        loss_power=power,
        tasks=tasks,
        mean_acc=mean_acc,
        retention=ret,
        baseline_loss=base_loss,
    )
    limits = [lim for slo in summary.parsed_slos() for lim in _limits_for(slo, fits, base_tasks)]
    return replace(fits, limits=tuple(limits))


def fit(summary: StudySummary, *, x: Axis = "mlp", all_trials: bool = False) -> StudyFits:
    """``frontier fit``: :func:`fit_study` on the Pareto set's held-out figures, or on
    every trial's search-time figures where ``all_trials`` or nothing was re-measured."""
    stage: Stage = "search" if all_trials or not summary.final else "final"
    return fit_study(summary, x=x, stage=stage)
