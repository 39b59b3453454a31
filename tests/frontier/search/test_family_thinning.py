"""The protect family bisected again protecting fewer layers, while that pays (no model:
the bisection is replaced by a rule on the plans it is given)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from frontier.search import family_search, uniform
from frontier.search.probe import LayerProbe
from frontier.study.schema import ATTR_FAMILIES, ATTR_PROBE

FULL = (64,) * 6
# layers 0, 2 and 5 critical; whole removal costs most at layer 0, then 5, then 2
PROBE = LayerProbe(
    "ppl", (150.0, 1.1, 2.7, 1.1, 1.1, 20.0), (True, False, True, False, False, True)
)


class _Study:
    def __init__(self, attrs: dict[str, Any]) -> None:
        self.user_attrs = dict(attrs)

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value


def _ctx() -> Any:
    return SimpleNamespace(
        spec=SimpleNamespace(families=("protect",)),
        space=SimpleNamespace(full=FULL, lo=0.2, hi=1.0, multiple=8),
        scores=SimpleNamespace(criterion="magnitude", per_layer=[]),  # no cost curves
    )


def _run(
    monkeypatch: pytest.MonkeyPatch,
    needs: dict[int, float],
    study: _Study | None = None,
    limit: float = 0.6,
) -> tuple[dict[str, Any], list[str]]:
    """Bisect with a rule for the SLOs: a plan passes where each layer in ``needs`` keeps
    at least that share of its width."""
    calls: list[str] = []

    def fake_bisect(
        ctx: Any, study: Any, *, family: str, plan_at: Any, bracket: Any, **_: Any
    ) -> dict[str, Any]:
        calls.append(family)
        lo, hi = bracket
        keeps = [round(hi - k * 0.01, 4) for k in range(round((hi - lo) / 0.01) + 1)]
        ok = [k for k in keeps if all(plan_at(k).widths[i] >= n * 64 for i, n in needs.items())]
        if not ok:
            return {"keep": None, "trial": None, "steps": []}
        keep = min(ok)
        return {"keep": keep, "trial": 0, "mlp_kept": plan_at(keep).kept_fraction, "steps": []}

    monkeypatch.setattr(uniform, "bisect_in_study", fake_bisect)
    study = study or _Study({ATTR_PROBE: PROBE.to_dict()})
    limits = family_search.bisect_families(_ctx(), study, limit)
    assert study.user_attrs[ATTR_FAMILIES] == limits
    return limits, calls


def test_thinning_stops_where_giving_up_a_layer_no_longer_pays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # layers 0 and 5 must stay whole, layer 2 needs only a quarter: giving up layer 2
    # pays, giving up layer 5 next does not
    limits, calls = _run(monkeypatch, {0: 1.0, 5: 1.0, 2: 0.25})
    assert calls == ["protect", "protect-2", "protect-1"]
    assert limits["protect"]["protected"] == [0, 2, 5]
    assert limits["protect-2"]["protected"] == [0, 5]
    assert limits["protect-2"]["mlp_kept"] < limits["protect"]["mlp_kept"]
    assert limits["protect-1"]["keep"] is None


def test_no_more_thinning_once_a_protected_layer_is_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, calls = _run(monkeypatch, {0: 1.0, 5: 1.0, 2: 1.0})
    assert calls == ["protect", "protect-2"]  # no plan without layer 2 whole: it stops
    # without layer 2 whole a plan passes, but a larger one: it stops too
    limits, calls = _run(monkeypatch, {0: 1.0, 5: 1.0, 2: 0.95}, limit=1.0)
    assert calls == ["protect", "protect-2"]
    assert limits["protect-2"]["mlp_kept"] > limits["protect"]["mlp_kept"]


def test_a_resumed_study_reads_its_records_instead_of_bisecting_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits, _ = _run(monkeypatch, {0: 1.0, 5: 1.0, 2: 0.25})
    resumed = _Study({ATTR_PROBE: PROBE.to_dict(), ATTR_FAMILIES: limits})
    again, calls = _run(monkeypatch, {0: 1.0, 5: 1.0, 2: 0.25}, resumed)
    assert again == limits and calls == []


def test_thinning_goes_on_while_protecting_that_many_meets_no_slo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # layer 1 (not critical) needs half its width: with three or two layers whole the
    # rest cannot have it at this size, with one they can
    limits, calls = _run(monkeypatch, {0: 1.0, 1: 0.5})
    assert calls == ["protect", "protect-2", "protect-1"]
    assert limits["protect"]["keep"] is None and limits["protect-2"]["keep"] is None
    assert limits["protect-1"]["keep"] is not None
