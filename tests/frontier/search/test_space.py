"""The search space: a keep budget and a shape per group of layers; warm-start plans."""

from __future__ import annotations

import optuna
import torch

from frontier.importance import Scores, compute_scores
from frontier.pruning.plan import Plan
from frontier.search.costs import LayerCosts, layer_costs
from frontier.search.space import Space, global_threshold_plan, uniform_ladder, warm_start_plans
from frontier.testing import tiny_loaded


def test_space_groups_and_warm_starts() -> None:
    space = Space.build([64] * 6, lo=0.25, hi=1.0, step=0.05, groups=3, multiple=8)
    plan = space.plan([0.5, 0.75, 1.0])
    assert plan.widths == (32, 32, 48, 48, 64, 64)
    params = space.params_for(plan)
    assert params == {"keep": 0.75, "shape_00": 0.65, "shape_01": 1.0, "shape_02": 1.35}
    # budget and shape give back the plan: mean keep 0.75 spread by the shape
    again = space.plan(space.ratios(params["keep"], [params[f"shape_0{g}"] for g in range(3)]))
    assert again.widths == (32, 32, 48, 48, 64, 64)
    # the budget sets the size whatever the shape (no clipping here)
    for shape in ([1.0, 1.0, 1.0], [0.6, 1.0, 1.4], [1.4, 0.6, 1.0]):
        assert abs(sum(space.ratios(0.6, shape)) / 3 - 0.6) < 1e-9
    costs = LayerCosts.from_scores([torch.rand(64).double() * (i + 1) for i in range(6)], "t")
    g = global_threshold_plan(costs, space, 0.7)
    assert abs(g.kept_fraction - 0.7) < 0.1
    assert len({p.widths for _, p in warm_start_plans(space, costs)}) == len(
        warm_start_plans(space, costs)
    )


def test_groups_are_contiguous_and_capped_at_the_layer_count() -> None:
    space = Space.build([64] * 7, lo=0.2, hi=1.0, step=0.025, groups=3, multiple=8)
    assert [space.group_of(i) for i in range(7)] == [0, 0, 0, 1, 1, 2, 2]
    assert space.names == ["keep", "shape_00", "shape_01", "shape_02"]
    per_layer = Space.build([64] * 4, lo=0.2, hi=1.0, step=0.025, groups=None, multiple=8)
    assert per_layer.n_groups == 4
    assert Space.build([64] * 4, lo=0.2, hi=1.0, step=0.025, groups=9, multiple=8).n_groups == 4


def test_suggest_reads_the_budget_and_shape_and_clips_to_the_bounds() -> None:
    space = Space.build([64] * 4, lo=0.25, hi=1.0, step=0.05, groups=2, multiple=8)
    trial = optuna.trial.FixedTrial({"keep": 0.5, "shape_00": 0.5, "shape_01": 1.5})
    assert space.suggest(trial).widths == (16, 16, 48, 48)  # 0.25 and 0.75 of 64
    clipped = optuna.trial.FixedTrial({"keep": 0.9, "shape_00": 0.5, "shape_01": 1.5})
    assert space.suggest(clipped).widths == (32, 32, 64, 64)  # 0.45 and 1.35 -> 1.0
    fixed = Space.build([64] * 4, lo=0.5, hi=0.5, step=0.05, groups=2, multiple=8)
    assert fixed.suggest(optuna.trial.FixedTrial({})).widths == (32,) * 4


def test_warm_start_parameters_stay_on_the_grid() -> None:
    space = Space.build([64] * 4, lo=0.3, hi=0.9, step=0.05, groups=1, multiple=8)
    assert space.params_for(Plan.dense([64] * 4)) == {"keep": 0.9}  # clipped to hi
    assert space.params_for(Plan.uniform(0.1, [64] * 4)) == {"keep": 0.3}  # clipped to lo
    labels = [label for label, _ in uniform_ladder(space, (0.95, 0.5, 0.25))]
    assert labels == ["uniform-0.50"]  # rungs outside [lo, hi] are left out


def _global(plans: list[tuple[str, Plan]]) -> list[Plan]:
    return [p for label, p in plans if label.startswith("global-")]


def test_rank_valued_scores_give_no_global_warm_start() -> None:
    # removal ranks 0..I-1 in every layer: divided by any per-layer scale, every layer of
    # one width gets the same values and keeps the same count. Ranks do not say what a
    # layer's neurons cost against another layer's, so no global threshold is built.
    space = Space.build([64] * 6, lo=0.2, hi=1.0, step=0.025, groups=3, multiple=8)
    gen = torch.Generator().manual_seed(0)
    ranks = tuple(torch.randperm(64, generator=gen).double() for _ in range(6))
    costs = layer_costs(Scores("magnitude", ranks, None))
    assert costs is None
    assert _global(warm_start_plans(space, costs, 0.6)) == []
    assert _global(warm_start_plans(space, costs)) == []
    assert warm_start_plans(space, costs)[0][0] == "uniform-0.95"


def test_costs_that_differ_by_layer_give_global_warm_starts_that_differ_by_layer() -> None:
    space = Space.build([64] * 6, lo=0.2, hi=1.0, step=0.025, groups=3, multiple=8)
    steep = [(torch.arange(1, 65).double() / 64) ** 2 * w for w in (1, 2, 4, 8, 16, 32)]
    plans = _global(warm_start_plans(space, LayerCosts.from_scores(steep, "t"), 0.6))
    assert plans
    for plan in plans:
        assert len(set(plan.widths)) > 1
        assert list(plan.widths) == sorted(plan.widths)  # the costlier layer keeps more


def test_obs_greedy_scores_give_non_uniform_global_warm_starts() -> None:
    # the real criterion end to end on a tiny model: its scores compare across layers
    from frontier.data.text import TokenSet

    lm = tiny_loaded("llama")
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 200, (8, 32), generator=gen)
    tokens = TokenSet(ids, "random ids", "calibration", 32, "rand-8-32")
    scores = compute_scores(lm, "obs-greedy", tokens, use_cache=False)
    costs = layer_costs(scores)
    assert costs is not None
    space = Space.build(costs.full, lo=0.2, hi=1.0, step=0.025, groups=None, multiple=4)
    plans = _global(warm_start_plans(space, costs, 0.5))
    assert plans and any(not p.is_uniform for p in plans)  # ranks would give all uniform
