"""The search space: a keep budget and a shape per group of layers; warm-start plans."""

from __future__ import annotations

import optuna
import torch

from frontier.pruning.plan import Plan
from frontier.search.space import Space, global_threshold_plan, uniform_ladder, warm_start_plans


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
    scores = [torch.rand(64) * (i + 1) for i in range(6)]
    g = global_threshold_plan(scores, space, 0.7)
    assert abs(g.kept_fraction - 0.7) < 0.1
    assert len({p.widths for _, p in warm_start_plans(space, scores)}) == len(
        warm_start_plans(space, scores)
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
