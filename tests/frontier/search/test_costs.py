"""Cost curves that compare across layers, and the cheapest plan of a size on them."""

from __future__ import annotations

import pytest
import torch

from frontier.errors import FrontierError
from frontier.importance import Scores
from frontier.search.costs import LayerCosts, cheapest_plan, layer_costs, widths_allowed


def _convex(n: int, weight: float) -> torch.Tensor:
    """Scores that are cumulative costs of a convex removal curve, in a shuffled order."""
    spent = weight * (torch.arange(1, n + 1, dtype=torch.float64) / n) ** 3
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    out = torch.empty(n, dtype=torch.float64)
    out[perm] = spent
    return out


def test_curves_read_the_cost_of_each_width_from_cumulative_scores() -> None:
    costs = LayerCosts.from_scores(
        [torch.tensor([0.5, 0.1, 0.9, 0.3], dtype=torch.float64)], "test"
    )
    # keeping k of 4: the cost after 4 - k removals; keeping all costs nothing
    assert costs.curves[0].tolist() == pytest.approx([0.9, 0.5, 0.3, 0.1, 0.0])
    assert costs.full == (4,) and costs.removal() == (0.9,)
    scaled = costs.calibrated([1.8], "x")
    assert scaled.curves[0].tolist() == pytest.approx([1.8, 1.0, 0.6, 0.2, 0.0])
    with pytest.raises(FrontierError):
        costs.calibrated([1.0, 2.0], "x")


def test_the_cheapest_plan_spends_the_size_where_it_costs_least() -> None:
    # four layers, the same curve shape, layer 2 ten times as costly: it keeps the most
    costs = LayerCosts.from_scores([_convex(64, w) for w in (1.0, 1.0, 10.0, 1.0)], "test")
    plan = cheapest_plan(costs, 0.5, lo=0.2, hi=1.0, multiple=4)
    assert plan.kept_fraction <= 0.5 and plan.kept_fraction > 0.5 - 4 / 64
    assert plan.widths[2] > max(plan.widths[i] for i in (0, 1, 3))
    assert plan.widths[0] == plan.widths[1] == plan.widths[3]
    # no other plan of the same widths' grid and size is cheaper (a few swaps tried)
    for a in range(4):
        for b in range(4):
            if a != b and plan.widths[a] + 4 <= 64 and plan.widths[b] - 4 >= 16:
                w = list(plan.widths)
                w[a] += 4
                w[b] -= 4
                other = type(plan)(tuple(w), plan.full, 4, 4)
                assert costs.cost(other) >= costs.cost(plan) - 1e-12


def test_whole_removal_only_where_allowed_and_cheap() -> None:
    # layer 1's MLP costs almost nothing whole: with removal allowed it goes
    costs = LayerCosts.from_scores([_convex(64, w) for w in (1.0, 1e-4, 1.0, 1.0)], "test")
    kept = cheapest_plan(costs, 0.6, lo=0.25, hi=1.0, multiple=4)
    assert kept.removed_layers == () and min(kept.widths) >= 16
    gone = cheapest_plan(costs, 0.6, lo=0.25, hi=1.0, multiple=4, removable=True)
    assert gone.removed_layers == (1,)
    assert costs.cost(gone) < costs.cost(kept)


def test_the_size_is_met_across_the_range_and_bounds_hold() -> None:
    costs = LayerCosts.from_scores([_convex(64, w) for w in (1.0, 3.0, 0.5)], "test")
    for target in (0.3, 0.45, 0.7, 0.9):
        plan = cheapest_plan(costs, target, lo=0.25, hi=0.9, multiple=4)
        assert all(16 <= w <= 60 for w in plan.widths)
        assert target - 8 / 64 < plan.kept_fraction <= target + 1e-9
    assert cheapest_plan(costs, 1.0, lo=0.25, hi=1.0, multiple=4).is_dense


def test_widths_allowed() -> None:
    assert widths_allowed(32, lo=0.5, hi=1.0, multiple=8, removable=False) == [16, 24, 32]
    assert widths_allowed(32, lo=0.5, hi=0.75, multiple=8, removable=True) == [0, 16, 24]


def test_only_a_comparable_criterion_has_costs() -> None:
    ranks = tuple(torch.arange(8, dtype=torch.float64)[torch.randperm(8)] for _ in range(3))
    assert layer_costs(Scores("magnitude", ranks, None)) is None
    assert layer_costs(Scores("activation", ranks, None)) is None
    costs = layer_costs(Scores("obs-greedy", ranks, None))
    assert costs is not None and costs.full == (8, 8, 8)
