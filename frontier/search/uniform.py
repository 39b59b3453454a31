"""The best uniform plan under the SLOs, found by bisection on the keep ratio.

Every layer keeps the same share of its neurons; the smallest share that still meets
the SLOs is found by bisection to ``tol`` (0.005 by default), assuming that keeping
more never breaks an SLO that keeping less meets. It is the baseline a searched plan is
judged against, and a warm start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan

Check = Callable[[Plan], tuple[bool, Any]]  # (meets every SLO, what was measured)


@dataclass(frozen=True)
class UniformPoint:
    keep: float
    plan: Plan
    feasible: bool
    measured: Any


@dataclass(frozen=True)
class Bisection:
    """The smallest feasible uniform plan found (None if keeping everything fails)."""

    best: UniformPoint | None
    points: tuple[UniformPoint, ...]
    tol: float


def bisect_uniform(
    full: Sequence[int],
    check: Check,
    *,
    lo: float = 0.0,
    hi: float = 1.0,
    tol: float = 0.005,
    multiple: int = 8,
    top_feasible: bool = False,
    plan_at: Callable[[float], Plan] | None = None,
) -> Bisection:
    """Bisect the uniform keep ratio in [lo, hi] until the bracket is narrower than ``tol``.

    ``check`` is called once per distinct plan (keep ratios that round to the same
    widths share one measurement). ``top_feasible``: take ``hi`` as meeting the SLOs
    without measuring it (the unpruned model meets any SLO relative to itself).
    ``plan_at``: another family's plan for a keep ratio (default: the uniform plan).
    """
    seen: dict[tuple[int, ...], UniformPoint] = {}
    points: list[UniformPoint] = []

    def make(keep: float) -> Plan:
        if plan_at is not None:
            return plan_at(keep)
        return Plan.uniform(keep, full, multiple=multiple, floor=multiple)

    def at(keep: float) -> UniformPoint:
        plan = make(keep)
        if plan.widths not in seen:
            ok, measured = check(plan)
            seen[plan.widths] = UniformPoint(keep, plan, ok, measured)
        known = seen[plan.widths]
        point = UniformPoint(keep, plan, known.feasible, known.measured)
        points.append(point)
        return point

    top = UniformPoint(hi, make(hi), True, None) if top_feasible else at(hi)
    if not top.feasible:
        return Bisection(None, tuple(points), tol)
    best = top
    bottom = at(lo)
    if bottom.feasible:
        return Bisection(bottom, tuple(points), tol)
    while hi - lo > tol:
        mid = (lo + hi) / 2
        point = at(mid)
        if point.feasible:
            hi = mid
            if point.plan.kept_fraction <= best.plan.kept_fraction:
                best = point
        else:
            lo = mid
    return Bisection(best, tuple(points), tol)


class BudgetSpent(Exception):
    """The study's trial budget ran out during the bisection."""


QUALITY_NEEDS = ("ppl", "kl")
BISECT_TOL = 0.01  # of the keep ratio, for the bisection that opens a study


def quality_slos(slos: Sequence[Any]) -> list[Any]:
    """The SLOs a uniform plan gets worse at as it keeps less (perplexity, KL)."""
    return [s for s in slos if s.needs in QUALITY_NEEDS]


def limit_record(bisection: Bisection) -> dict[str, Any]:
    """What a study stores under ``frontier:uniform_limit``: the smallest uniform plan that
    met the quality SLOs, its trial, and every bisection step (``measured``: the trial)."""
    steps = [
        {"keep": p.keep, "trial": p.measured, "feasible": p.feasible} for p in bisection.points
    ]
    if bisection.best is None:
        return {"keep": None, "trial": None, "tol": bisection.tol, "steps": steps}
    best = bisection.best
    return {
        "keep": best.keep,
        "trial": best.measured,
        "mlp_kept": best.plan.kept_fraction,
        "tol": bisection.tol,
        "steps": steps,
    }


def bisect_in_study(
    ctx: Any,
    study: Any,
    *,
    tol: float = BISECT_TOL,
    budget: int | None = None,
    callbacks: Sequence[Any] | None = None,
    family: str = "uniform",
    plan_at: Callable[[float], Plan] | None = None,
    bracket: tuple[float, float] | None = None,
) -> dict[str, Any] | None:
    """Bisect the uniform keep ratio at a study's perplexity/KL SLOs with trials of the
    study itself, so every step is a stored, resumable trial (labelled ``uniform-bisect``)
    and the steps also feed the Pareto set. Plans a finished trial already measured are
    not measured again. Returns the ``uniform_limit`` record (None without such an SLO).
    Raises :class:`BudgetSpent` rather than run a step once ``budget`` trials are finished.
    ``callbacks`` (Optuna's) see every bisection trial, as they see the others.
    ``family``, ``plan_at`` and ``bracket``: bisect another allocation family's mean keep
    (:mod:`frontier.search.families`) in ``bracket`` (default: the spec's bounds), its
    trials labelled ``<family>-bisect`` and recorded with the family.
    """
    from optuna.trial import TrialState

    from frontier.search.storage import n_finished
    from frontier.search.trial import TrialFailed, run_trial
    from frontier.study.schema import ATTR_FAILED, ATTR_FAMILY, ATTR_PLAN, ATTR_WARM

    quality = quality_slos(ctx.slos)
    if not quality:
        return None
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

    def measured(plan: Plan) -> Any:
        for t in study.get_trials(deepcopy=False, states=states):
            stored = t.user_attrs.get(ATTR_PLAN)
            same = isinstance(stored, dict) and tuple(stored.get("widths", ())) == plan.widths
            # a FAIL trial counts when the model broke (NaN), not when it was interrupted
            if same and (t.state != TrialState.FAIL or t.user_attrs.get(ATTR_FAILED)):
                return t
        return None

    def check(plan: Plan) -> tuple[bool, Any]:
        keep = plan.kept_fraction
        t = measured(plan)
        if t is None and budget is not None and n_finished(study) >= budget:
            raise BudgetSpent
        if t is None:
            study.enqueue_trial(
                ctx.space.params_for(plan),
                user_attrs={
                    ATTR_WARM: f"{family}-bisect-{keep:.3f}",
                    ATTR_PLAN: plan.to_dict(),
                    ATTR_FAMILY: family,
                },
            )
            study.optimize(
                lambda tr: run_trial(ctx, tr),
                n_trials=1,
                catch=(TrialFailed,),
                callbacks=list(callbacks or ()),
                gc_after_trial=False,
            )
            t = measured(plan)
        if t is None:  # another worker took the trial from the queue before this process
            raise FrontierError(
                "a bisection trial was run by another worker; run the command again to "
                "resume (finished trials are kept)"
            )
        ok = t.state != TrialState.FAIL and all(
            (t.constraints.get(str(s), float("inf")) or 0.0) <= 0 for s in quality
        )
        return ok, t.number

    spec = ctx.spec
    lo, hi = bracket or (spec.min_keep, spec.max_keep)
    bisection = bisect_uniform(
        ctx.pruner.full,
        check,
        lo=lo,
        hi=hi,
        tol=tol,
        multiple=spec.multiple,
        top_feasible=bracket is None and spec.max_keep >= 1.0,
        plan_at=plan_at,
    )
    return limit_record(bisection)


def uniform_baseline(ctx: Any, *, tol: float = 0.005) -> Bisection:
    """Bisect a study's uniform plans on its search-time measurement and cheap SLOs
    (``ctx``: a :class:`frontier.search.context.SearchContext`)."""
    from frontier.search.trial import measured_metrics

    cheap_slos = [s for s in ctx.slos if s.needs != "tasks"]

    def check(plan: Plan) -> tuple[bool, Any]:
        with ctx.pruner.pruned(plan):
            size = ctx.size.evaluate(ctx.lm)
            cheap = ctx.cheap.evaluate(ctx.lm)
        metrics = measured_metrics(size, cheap, None)
        ok = all((s.violation(metrics) or 0.0) <= 0 for s in cheap_slos)
        return ok, {"value": cheap.value, "mlp_kept": size.details["mlp_kept_fraction"]}

    return bisect_uniform(
        ctx.pruner.full, check, lo=ctx.spec.min_keep, hi=1.0, tol=tol, multiple=ctx.spec.multiple
    )
