"""A study's numbers: the verdicts on a point (missed SLOs, nearest) and summary.json."""

from __future__ import annotations

import dataclasses
import json

from frontier.study.summary import (
    StudySummary,
    TrialPoint,
    feasible,
    nearest,
    ranked_by_nearness,
)
from frontier.testing import synthetic_summary


def _point(number: int, violations: dict[str, float | None], *, removed: float = 0.3) -> TrialPoint:
    return TrialPoint(
        number=number,
        mlp_removed=removed,
        params_removed=removed / 2,
        loss=3.0,
        ppl_ratio=1.2,
        tasks={},
        feasible=False,
        pareto=False,
        chosen=False,
        widths=(8,),
        full=(16,),
        stage="search",
        violations=violations,
    )


def test_feasible_means_every_slo_measured_and_met() -> None:
    assert feasible({"ppl<1.5": -0.1, "params<=60%": 0.0})
    assert not feasible({"ppl<1.5": -0.1, "params<=60%": 1e-12})
    assert not feasible({"ppl<1.5": -0.1, "tasks>=90%": None})  # not measured: not met


def test_missed_lists_violated_and_unmeasured_slos_in_order() -> None:
    p = _point(0, {"ppl<1.5": 0.1, "params<=60%": -0.2, "tasks>=90%": None})
    assert p.missed == ("ppl<1.5", "tasks>=90% (not measured)")
    assert p.worst_violation == 0.1 and p.total_violation == 0.1
    assert _point(1, {"ppl<1.5": None}).worst_violation is None


def test_nearest_orders_by_largest_then_summed_violation_then_size_then_number() -> None:
    largest = [_point(0, {"a": 0.3, "b": -1.0}), _point(1, {"a": 0.2, "b": 0.2})]
    assert nearest(largest).number == 1  # type: ignore[union-attr]  # 0.2 < 0.3, sum aside
    summed = [_point(0, {"a": 0.2, "b": 0.2}), _point(1, {"a": 0.2, "b": 0.1})]
    assert nearest(summed).number == 1  # type: ignore[union-attr]
    smaller = [_point(0, {"a": 0.2}, removed=0.3), _point(1, {"a": 0.2}, removed=0.4)]
    assert nearest(smaller).number == 1  # type: ignore[union-attr]  # fewer parameters kept
    same = [_point(3, {"a": 0.2}), _point(2, {"a": 0.2})]
    assert nearest(same).number == 2  # type: ignore[union-attr]
    # met SLOs count as 0, not as negative slack
    met = [_point(0, {"a": -0.9}, removed=0.3), _point(1, {"a": -0.1}, removed=0.4)]
    assert nearest(met).number == 1  # type: ignore[union-attr]
    unmeasured = [_point(0, {"a": None}), _point(1, {"a": 0.5})]
    assert [p.number for p in ranked_by_nearness(unmeasured)] == [1]
    assert nearest([]) is None


def test_summary_json_keeps_verdicts_and_old_summaries_get_them() -> None:
    s = synthetic_summary(n_trials=12)
    assert all(p.violations for p in (*s.points, *s.final))
    data = json.loads(s.to_json())
    assert StudySummary.from_dict(data) == s
    for p in (*data["points"], *data["final"]):
        del p["violations"]  # a summary.json written before verdicts were stored
    old = StudySummary.from_dict(data)
    assert [p.violations for p in old.points] == [p.violations for p in s.points]


def test_believed_figures_prefer_held_out_and_nearest_uses_them() -> None:
    s = synthetic_summary(n_trials=12)
    final_numbers = {p.number for p in s.final}
    assert final_numbers
    believed = s.believed()
    assert {p.number for p in believed} == {p.number for p in s.points}
    assert all((p.stage == "final") == (p.number in final_numbers) for p in believed)
    far = {k: 5.0 for k in s.points[0].violations}
    n = next(iter(final_numbers))
    worse = tuple(dataclasses.replace(p, violations=far) if p.number == n else p for p in s.final)
    assert dataclasses.replace(s, final=worse).figures_for(n).violations == far  # type: ignore[union-attr]


def test_moved_names_stay_importable_from_their_documented_modules() -> None:
    """summary and slo re-export what moved to point, verdicts and measured: one object."""
    from frontier.study import measured, point, slo, summary, verdicts

    for name in ("Stage", "TrialPoint"):
        assert getattr(summary, name) is getattr(point, name)
    for name in verdicts.__all__:
        assert name in summary.__all__ and getattr(summary, name) is getattr(verdicts, name)
    for name in measured.__all__:
        assert name in slo.__all__ and getattr(slo, name) is getattr(measured, name)
