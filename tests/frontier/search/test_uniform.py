"""Bisection of the uniform keep ratio."""

from __future__ import annotations

import pytest

from frontier.pruning.plan import Plan
from frontier.search.uniform import bisect_uniform

FULL = (1536,) * 4


@pytest.mark.parametrize("threshold", [0.237, 0.5, 0.61, 0.999])
def test_bisection_finds_the_smallest_feasible_keep_within_tol(threshold: float) -> None:
    calls: list[tuple[int, ...]] = []

    def check(plan: Plan) -> tuple[bool, float]:
        calls.append(plan.widths)
        return plan.kept_fraction >= threshold, plan.kept_fraction

    found = bisect_uniform(FULL, check, lo=0.2, tol=0.005)
    assert found.best is not None
    kept = found.best.plan.kept_fraction
    assert kept >= threshold  # feasible
    assert kept - threshold <= 0.005 + 8 / 1536  # within tol, up to width rounding
    assert len(calls) == len(set(calls))  # one measurement per distinct plan
    assert len(calls) <= 12  # log2(0.8 / 0.005) + 2, not a ladder


def test_nothing_feasible_and_everything_feasible() -> None:
    none = bisect_uniform(FULL, lambda p: (False, None))
    assert none.best is None and len(none.points) == 1
    low = bisect_uniform(FULL, lambda p: (True, None), lo=0.3)
    assert low.best is not None and low.best.keep == 0.3
