from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan, round_width


def test_round_width_multiple_floor_and_full() -> None:
    assert round_width(0.75, 1536, multiple=8, floor=8) == 1152
    assert round_width(1.0, 1500, multiple=8, floor=8) == 1500  # full is always reachable
    assert round_width(0.0, 1536, multiple=8, floor=64) == 64
    assert round_width(0.001, 1536, multiple=8, floor=8) == 8
    with pytest.raises(FrontierError):
        round_width(1.5, 10, multiple=8, floor=8)


@given(
    keep=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
    full=st.integers(16, 4096),
    multiple=st.sampled_from([1, 8, 16, 64]),
)
def test_from_ratios_invariants(keep: list[float], full: int, multiple: int) -> None:
    plan = Plan.from_ratios(keep, [full] * len(keep), multiple=multiple, floor=multiple)
    for w in plan.widths:
        assert min(multiple, full) <= w <= full
        assert w == full or w % multiple == 0
    assert Plan.from_json(plan.to_json()) == plan
    assert 0.0 <= plan.removed_fraction < 1.0


def test_plan_is_frozen_and_hashable() -> None:
    plan = Plan.uniform(0.5, [64, 64])
    with pytest.raises(AttributeError):
        plan.widths = (1, 2)  # type: ignore[misc]
    assert {plan: 1}[Plan.uniform(0.5, [64, 64])] == 1
    assert plan.is_uniform and not plan.is_dense
    assert Plan.dense([64, 64]).is_dense


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "{}",
        '{"widths": [1], "full": [1, 2]}',
        '{"widths": [9], "full": [8]}',
        "nope",
        '{"format": 99, "widths": [8], "full": [8]}',
    ],
)
def test_malformed_plans_are_one_line_errors(text: str) -> None:
    with pytest.raises(FrontierError) as err:
        Plan.from_json(text)
    assert "\n" not in str(err.value)


def test_a_width_of_zero_removes_the_layers_mlp() -> None:
    plan = Plan((0, 16, 0), (64, 64, 64))
    assert plan.removed_layers == (0, 2)
    assert plan.kept_fraction == 16 / 192 and not plan.is_uniform and not plan.is_dense
    assert Plan.from_json(plan.to_json()) == plan
    assert plan.to_dict()["widths"] == [0, 16, 0]
    assert "2 MLPs removed" in plan.describe()
    assert Plan((0, 0), (8, 8)).is_uniform and Plan((0, 0), (8, 8)).kept_fraction == 0.0
    assert Plan.dense([64]).removed_layers == ()
    assert "MLPs removed" not in Plan.dense([64]).describe()


def test_a_keep_ratio_never_rounds_to_a_removed_mlp() -> None:
    """Width 0 is given explicitly: keep ratios (the search's, the uniform bisection's
    lower end 0.0) still round to the floor, so the search space is unchanged."""
    assert Plan.uniform(0.0, [64, 64], multiple=8, floor=8).widths == (8, 8)
    assert Plan.from_ratios([0.0, 0.01], [64, 64], multiple=8, floor=8).removed_layers == ()


@pytest.mark.parametrize("widths", [(-1, 8), (9, 8)])
def test_widths_outside_zero_to_full_are_refused(widths: tuple[int, int]) -> None:
    with pytest.raises(FrontierError, match=r"outside \[0, 8\]"):
        Plan(widths, (8, 8))
