"""Allocation families: the contract every registered family passes, and each one's rule."""

from __future__ import annotations

import pytest
import torch

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.search.costs import LayerCosts
from frontier.search.families import FAMILIES, AllocationInfo, get_family

FULL = (64,) * 10


def _info(**kw: object) -> AllocationInfo:
    # layer 3 is costly, layer 6 nearly free whole; layers 0 and 9 critical
    weights = [1.0, 1.0, 1.0, 8.0, 1.0, 1.0, 0.01, 1.0, 1.0, 1.0]
    curves = []
    for w in weights:
        spent = w * (torch.arange(1, 65, dtype=torch.float64) / 64) ** 3
        curves.append(spent)
    costs = LayerCosts.from_scores(curves, "test")
    base: dict[str, object] = {
        "full": FULL,
        "lo": 0.2,
        "hi": 1.0,
        "multiple": 4,
        "costs": costs,
        "critical": (0, 9),
    }
    return AllocationInfo(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_keeps_about_what_it_is_asked_and_more_when_asked_more(name: str) -> None:
    family = get_family(name)
    info = _info()
    assert family.available(info) is None
    sizes = []
    for keep in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        plan = family.plan(keep, info)
        assert isinstance(plan, Plan) and plan.full == FULL
        assert family.plan(keep, info) == plan  # a pure function of its inputs
        for w, f in zip(plan.widths, plan.full, strict=True):
            # within the bounds, or removed where the family removes
            assert w == f or w % 4 == 0
            assert w >= 0.2 * f - 4 or (w == 0 and name == "removal")
        assert abs(plan.kept_fraction - keep) <= 0.05, (keep, plan.widths)
        sizes.append(plan.kept_fraction)
    assert sizes == sorted(sizes)
    hash(family.plan(0.5, info))  # the plan is a frozen value


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_is_described_and_says_what_it_lacks(name: str) -> None:
    family = get_family(name)
    assert family.name == name and family.description
    bare = _info(costs=None, critical=None)
    why = family.available(bare)
    assert (why is None) == (not family.needs_costs and not family.needs_probe)
    if why is not None:
        assert "needs" in why


def test_unknown_family_is_one_line() -> None:
    with pytest.raises(FrontierError, match="unknown allocation family 'nope'; known: "):
        get_family("nope")


def test_each_rule() -> None:
    info = _info()
    protect = get_family("protect").plan(0.5, info)
    assert protect.widths[0] == protect.widths[9] == 64  # the critical layers whole
    assert len(set(protect.widths[1:9])) == 1 and protect.widths[1] < 32  # the rest pay
    removal = get_family("removal").plan(0.5, info)
    assert removal.removed_layers == (6,)  # the layer whose MLP is nearly free whole
    threshold = get_family("threshold").plan(0.5, info)
    assert threshold.removed_layers == () and threshold.widths[3] == max(threshold.widths)
    falling = get_family("depth-falling").plan(0.5, info).widths
    rising = get_family("depth-rising").plan(0.5, info).widths
    assert list(falling) == sorted(falling, reverse=True) and falling[0] > falling[-1]
    assert list(rising) == sorted(rising) and rising[0] < rising[-1]
    assert get_family("uniform").plan(0.5, info).is_uniform


def test_thinning_gives_up_the_cheapest_critical_layer_first() -> None:
    info = _info(critical=(0, 4, 9), removal=(5.0,) + (0.1,) * 3 + (0.7,) + (0.1,) * 4 + (2.0,))
    fewer = info.thinned()
    assert fewer is not None and fewer.critical == (0, 9)  # layer 4 cost least whole
    last = fewer.thinned()
    assert last is not None and last.critical == (0,)
    assert last.thinned() is None  # one protected layer left: nothing to thin
    assert _info(removal=None).thinned() is None  # nothing ranks the critical layers
    plan = get_family("protect").plan(0.5, fewer)
    assert plan.widths[0] == plan.widths[9] == 64 and plan.widths[4] < 64
