"""The layer probe's record: critical layers, removal costs on an additive scale."""

from __future__ import annotations

import math

import pytest

from frontier.search.probe import LayerProbe


def test_critical_layers_and_costs() -> None:
    probe = LayerProbe(
        "ppl", (11621.0, 1.1, 4.93, math.inf, 0.98), (True, False, True, True, False)
    )
    assert probe.critical == (0, 2, 3)
    costs = probe.removal_costs()
    assert costs[0] == pytest.approx(math.log(11621.0))
    assert costs[1] == pytest.approx(math.log(1.1))
    assert costs[4] == 0.0  # a layer whose removal helps costs nothing, not less
    assert costs[3] == pytest.approx(2 * math.log(11621.0))  # broken: the worst, doubled
    again = LayerProbe.from_dict(probe.to_dict())
    assert again == probe


def test_kl_costs_are_the_kl_itself() -> None:
    probe = LayerProbe("kl", (0.5, 0.01), (True, False))
    assert probe.removal_costs() == (0.5, 0.01)
