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

from frontier.plan import Plan

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
) -> Bisection:
    """Bisect the uniform keep ratio in [lo, hi] until the bracket is narrower than ``tol``.

    ``check`` is called once per distinct plan (keep ratios that round to the same
    widths share one measurement).
    """
    seen: dict[tuple[int, ...], UniformPoint] = {}
    points: list[UniformPoint] = []

    def at(keep: float) -> UniformPoint:
        plan = Plan.uniform(keep, full, multiple=multiple, floor=multiple)
        if plan.widths not in seen:
            ok, measured = check(plan)
            seen[plan.widths] = UniformPoint(keep, plan, ok, measured)
        point = seen[plan.widths]
        points.append(UniformPoint(keep, plan, point.feasible, point.measured))
        return point

    top = at(hi)
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
            if point.plan.kept_fraction < best.plan.kept_fraction:
                best = point
        else:
            lo = mid
    return Bisection(best, tuple(points), tol)


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
