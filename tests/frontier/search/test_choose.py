"""choose, nearest and finalize on hand-built Optuna studies: every verdict is known."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

import frontier.search.find as find_mod
from frontier.pruning.plan import Plan
from frontier.search.find import choose, final_record, finalize, nearest_trial
from frontier.study.schema import ATTR_PLAN, ATTR_SEARCH, ATTR_SPEC, ATTR_UNIFORM
from frontier.testing import small_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)
SLO = "ppl<1.5"
SLO2 = "mlp<=60%"


def _attrs(kept: float, ppl: float) -> dict[str, Any]:
    """What the runner stores with a trial: its plan and search-time figures."""
    plan = Plan((round(64 * kept) // 4 * 4,), (64,), 4, 4)
    search = {"mlp_kept": kept, "params_kept": kept, "ppl_ratio": ppl}
    return {ATTR_PLAN: plan.to_dict(), ATTR_SEARCH: search}


def _study(*trials: tuple[float, float, Mapping[str, float]]) -> optuna.Study:
    """A two-objective study of (params kept, ppl ratio) with these constraint values."""
    study = optuna.create_study(directions=["minimize", "minimize"])
    spec = small_spec("tiny", "sqlite:///unused.db", slos=(SLO, SLO2))
    study.set_user_attr(ATTR_SPEC, json.loads(json.dumps(spec.to_dict())))
    for i, (kept, ppl, constraints) in enumerate(trials):
        study.add_trial(
            create_trial(
                values=[kept, ppl],
                params={"x": float(i)},
                distributions={"x": FloatDistribution(0.0, 100.0)},
                user_attrs=_attrs(kept, ppl),
                constraints=dict(constraints),
            )
        )
    return study


def _final(study: optuna.Study, number: int, *, feasible: bool, ppl: float = 1.4) -> None:
    kept = study.trials[number].values[0]
    study.set_user_attr(
        f"frontier:final:{number}",
        {
            "feasible": feasible,
            "ppl_ratio": ppl,
            "violations": {},
            "mlp_kept": kept,
            "params_kept": kept,
        },
    )


# -- choose ------------------------------------------------------------------------------
def test_choose_skips_a_trial_that_fails_held_out() -> None:
    # trial 0 is the smallest and met the SLO at search time, but not on held-out text
    study = _study((0.5, 1.45, {SLO: -0.03}), (0.6, 1.3, {SLO: -0.13}), (0.7, 1.2, {SLO: -0.2}))
    _final(study, 0, feasible=False, ppl=1.6)
    _final(study, 1, feasible=True, ppl=1.35)
    _final(study, 2, feasible=True, ppl=1.25)
    chosen = choose(study)
    assert chosen is not None and chosen.number == 1


def test_choose_never_picks_a_trial_not_re_measured() -> None:
    study = _study((0.5, 1.45, {SLO: -0.03}), (0.6, 1.3, {SLO: -0.13}))
    _final(study, 1, feasible=True)
    chosen = choose(study)
    assert chosen is not None and chosen.number == 1
    empty = _study((0.5, 1.45, {SLO: -0.03}))
    assert choose(empty) is None


def test_choose_ties_on_size_go_to_the_lower_held_out_ppl_then_the_lower_number() -> None:
    # two Pareto trials of equal search figures: held-out perplexity decides
    study = _study((0.5, 1.3, {SLO: -0.1}), (0.5, 1.3, {SLO: -0.1}), (0.5, 1.3, {SLO: -0.1}))
    _final(study, 0, feasible=True, ppl=1.40)
    _final(study, 1, feasible=True, ppl=1.32)
    _final(study, 2, feasible=True, ppl=1.32)
    chosen = choose(study)
    assert chosen is not None and chosen.number == 1


def test_choose_takes_a_dominated_trial_only_when_it_is_the_smallest_to_pass_held_out() -> None:
    # trial 1 is dominated by trial 0 (bigger and worse): not chosen while trial 0 passes
    study = _study((0.6, 1.2, {SLO: -0.2}), (0.7, 1.3, {SLO: -0.1}))
    _final(study, 0, feasible=True)
    _final(study, 1, feasible=True)
    chosen = choose(study)
    assert chosen is not None and chosen.number == 0
    # trial 3 has trial 2's size and a worse search figure (so it is off the Pareto set),
    # but only it passes held out: the held-out figures decide
    study = _study((0.6, 1.2, {SLO: -0.2}), (0.6, 1.3, {SLO: -0.1}), (0.8, 1.1, {SLO: -0.3}))
    assert [t.number for t in study.best_trials] == [0, 2]
    _final(study, 0, feasible=False)
    _final(study, 1, feasible=True)
    _final(study, 2, feasible=True)
    chosen = choose(study)
    assert chosen is not None and chosen.number == 1


def test_choose_needs_the_search_time_verdict_too() -> None:
    # a trial re-measured as the nearest miss (infeasible at search time) is not chosen,
    # even when it passes held out
    study = _study((0.6, 1.6, {SLO: 0.1}))
    _final(study, 0, feasible=True)
    assert choose(study) is None


def test_finalize_measures_every_search_feasible_trial_of_a_size_before_a_larger_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # three trials of one size; the Pareto one (lowest search figure) fails held out, the
    # next of the same size passes: it is measured before the larger Pareto trial
    study = _study(
        (0.5, 1.30, {SLO: -0.2}),
        (0.5, 1.40, {SLO: -0.1}),
        (0.5, 1.45, {SLO: -0.05}),
        (0.7, 1.10, {SLO: -0.4}),
        (0.4, 1.60, {SLO: 0.1}),  # infeasible at search: never a candidate
    )
    order = _run_finalize(study, 2, {0: False}, monkeypatch)
    assert order == [0, 1]
    chosen = choose(study)
    assert chosen is not None and chosen.number == 1


# -- nearest -----------------------------------------------------------------------------
def test_nearest_minimises_the_largest_violation_not_the_sum() -> None:
    # trial 0: one SLO badly missed (worst 0.5, sum 0.5); trial 1: two SLOs narrowly missed
    # (worst 0.3, sum 0.6). The summed violation would pick trial 0; the worst picks 1.
    study = _study(
        (0.5, 2.0, {SLO: 0.5, SLO2: -0.1}),
        (0.7, 1.8, {SLO: 0.3, SLO2: 0.3}),
        (0.9, 3.0, {SLO: 1.0, SLO2: 0.5}),
    )
    nearest = nearest_trial(study)
    assert nearest is not None and nearest.number == 1


def test_nearest_ties_go_to_the_smaller_sum_then_fewer_params_then_lower_number() -> None:
    sum_decides = _study(
        (0.5, 2.0, {SLO: 0.3, SLO2: 0.3}),
        (0.7, 1.8, {SLO: 0.3, SLO2: 0.1}),
    )
    n = nearest_trial(sum_decides)
    assert n is not None and n.number == 1
    size_decides = _study((0.8, 2.0, {SLO: 0.3}), (0.6, 2.0, {SLO: 0.3}))
    n = nearest_trial(size_decides)
    assert n is not None and n.number == 1
    number_decides = _study((0.6, 2.0, {SLO: 0.3}), (0.6, 2.0, {SLO: 0.3}))
    n = nearest_trial(number_decides)
    assert n is not None and n.number == 0


def test_nearest_counts_met_slos_as_zero_and_needs_constraints() -> None:
    # a large margin on a met SLO buys nothing against a violated one
    study = _study((0.5, 1.0, {SLO: 0.2, SLO2: -5.0}), (0.6, 1.0, {SLO: 0.1, SLO2: 0.0}))
    n = nearest_trial(study)
    assert n is not None and n.number == 1
    assert nearest_trial(_study((0.5, 1.0, {}))) is None


# -- finalize ----------------------------------------------------------------------------
class _Measured:
    """Stands in for the held-out re-measurement: records the order, returns set verdicts."""

    def __init__(self, feasible: Mapping[int, bool]) -> None:
        self.feasible = feasible
        self.order: list[int] = []
        self.spread: list[int] = []  # measured on fit_tokens only
        self.contexts: list[Any] = []

    def __call__(
        self, ctx: Any, study: optuna.Study, t: Any, *, spread: bool = False, say: Any = None
    ) -> dict[str, Any]:
        self.order.append(t.number)
        self.contexts.append(ctx)
        if spread:
            self.spread.append(t.number)
        rec = {
            "tokens": 4 if spread else 16,
            "spread": spread,
            "feasible": self.feasible.get(t.number, True),
            "ppl_ratio": t.values[1],
            "mlp_kept": t.values[0],
            "params_kept": t.values[0],
            "violations": dict(t.constraints),  # as the runner records them, per SLO
        }
        study.set_user_attr(f"frontier:final:{t.number}", rec)
        return rec


def _front(n: int) -> optuna.Study:
    """n Pareto trials, added in shuffled order; trial i keeps a size given by `sizes`."""
    sizes = [0.9, 0.4, 0.7, 0.5, 0.8, 0.6, 0.3, 0.95][:n]
    return _study(*((s, 1.0 + (1 - s), {SLO: -0.01}) for s in sizes))


def _run_finalize(
    study: optuna.Study,
    report_points: int,
    feasible: Mapping[int, bool],
    mp: pytest.MonkeyPatch,
    measured: _Measured | None = None,
    said: list[str] | None = None,
) -> list[int]:
    measured = measured or _Measured(feasible)
    mp.setattr(find_mod, "_measure_final", measured)
    mp.setattr(find_mod, "fall_back", lambda *_a, **_k: None)  # test_fallback.py's part
    spec = SimpleNamespace(report_points=report_points, report_tokens=16, fit_tokens=4)
    ctx = SimpleNamespace(spec=spec)
    finalize(ctx, study, progress=None if said is None else said.append)  # type: ignore[arg-type]
    assert all(c is ctx for c in measured.contexts)  # every measurement in the study's context
    return measured.order


def _by_size(study: optuna.Study) -> list[int]:
    return [t.number for t in sorted(study.best_trials, key=lambda t: t.values[0])]


def test_finalize_measures_smallest_first_until_feasible_then_spaces_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study = _front(8)
    by_size = _by_size(study)  # trial numbers from the smallest up
    assert len(by_size) == 8
    # the two smallest fail held out, the third passes; 5 report points in all
    feasible = {by_size[0]: False, by_size[1]: False}
    order = _run_finalize(study, 5, feasible, monkeypatch)
    # the first three in size order, then 2 evenly spaced among the 5 left: first and last
    assert order == [by_size[0], by_size[1], by_size[2], by_size[3], by_size[7]]
    chosen = choose(study)
    assert chosen is not None and chosen.number == by_size[2]


def test_finalize_spacing_covers_the_front_evenly(monkeypatch: pytest.MonkeyPatch) -> None:
    study = _front(8)
    by_size = _by_size(study)
    measured = _Measured({})
    said: list[str] = []
    order = _run_finalize(study, 4, {}, monkeypatch, measured, said)
    # the smallest is feasible at once; 3 more among the 7 left, at positions 0, 3 and 6,
    # measured on fit_tokens only: they spread the front, none can be chosen
    assert order == [by_size[0], by_size[1], by_size[4], by_size[7]]
    assert measured.spread == [by_size[1], by_size[4], by_size[7]]
    assert said[-3:] == [
        f"held-out: trial {n}, front point {i} of 3 (for the fits)"
        for i, n in enumerate((by_size[1], by_size[4], by_size[7]), 1)
    ]


def test_a_trial_that_passed_on_fit_tokens_is_re_measured_before_it_is_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a resumed study: trial by_size[1] was spread-measured (4 tokens) and passed; the
    # new smaller trial fails; by_size[1] is now the candidate and gets all 16 tokens
    study = _front(6)
    by_size = _by_size(study)
    _final(study, by_size[1], feasible=True)
    study.set_user_attr(
        f"frontier:final:{by_size[1]}",
        {**study.user_attrs[f"frontier:final:{by_size[1]}"], "tokens": 4, "spread": True},
    )
    measured = _Measured({by_size[0]: False})
    order = _run_finalize(study, 3, {}, monkeypatch, measured)
    assert order[:2] == [by_size[0], by_size[1]]
    assert by_size[1] not in measured.spread
    rec = final_record(study, study.trials[by_size[1]])
    assert rec is not None and rec["tokens"] == 16 and not rec["spread"]
    chosen = choose(study)
    assert chosen is not None and chosen.number == by_size[1]


def test_finalize_stops_at_report_points_when_nothing_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study = _front(6)
    by_size = _by_size(study)
    order = _run_finalize(study, 3, dict.fromkeys(by_size, False), monkeypatch)
    assert order == by_size[:3]
    assert choose(study) is None


def test_finalize_does_not_re_measure_what_was_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    study = _front(4)
    by_size = _by_size(study)
    _final(study, by_size[0], feasible=False)
    order = _run_finalize(study, 2, {}, monkeypatch)
    assert order == [by_size[1]]
    rec = final_record(study, study.trials[by_size[0]])
    assert rec is not None and rec["feasible"] is False and rec["ppl_ratio"] == 1.4


def test_finalize_re_measures_the_nearest_when_nothing_is_feasible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study = _study(
        (0.5, 2.0, {SLO: 0.6}),
        (0.6, 1.7, {SLO: 0.15}),
        (0.7, 1.9, {SLO: 0.3}),
    )
    assert study.best_trials == []  # no feasible trial: no Pareto set to re-measure
    order = _run_finalize(study, 12, {}, monkeypatch)
    assert order == [1]
    # measured once only: a second finalize leaves it alone
    assert _run_finalize(study, 12, {}, monkeypatch) == []


def test_finalize_re_measures_the_bisected_uniform_plan_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the uniform plan (by_size[4]) is neither the chosen point nor spread-measured, but the
    # report judges the chosen point against it, so it gets held-out figures too
    study = _front(6)
    by_size = _by_size(study)
    uniform = by_size[4]
    study.set_user_attr(ATTR_UNIFORM, {"trial": uniform, "keep": 0.8})
    said: list[str] = []
    order = _run_finalize(study, 2, {}, monkeypatch, said=said)
    assert order == [by_size[0], by_size[1], uniform]
    assert said == [  # a line before every re-measurement (each takes minutes with tasks)
        "re-measuring up to 2 trials on held-out text and report documents",
        f"held-out: trial {by_size[0]}, candidate 1 of up to 2",
        f"held-out: trial {by_size[1]}, front point 1 of 1 (for the fits)",
        "re-measuring the bisected uniform plan on held-out data (the baseline)",
    ]
    assert final_record(study, uniform) is not None
    assert uniform not in _run_finalize(study, 2, {}, monkeypatch)  # measured once only


def test_finalize_does_not_re_measure_a_uniform_plan_already_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study = _front(4)
    by_size = _by_size(study)
    study.set_user_attr(ATTR_UNIFORM, {"trial": by_size[0], "keep": 0.4})
    order = _run_finalize(study, 1, {}, monkeypatch)
    assert order == [by_size[0]]  # measured as the candidate; not again as the baseline


def test_nearest_counts_screened_trials() -> None:
    study = _study((0.5, 2.0, {SLO: 0.6}))
    study.add_trial(
        create_trial(state=TrialState.PRUNED, user_attrs=_attrs(0.6, 1.6), constraints={SLO: 0.1})
    )
    n = nearest_trial(study)
    assert n is not None and n.number == 1


def test_nearest_ignores_failed_and_running_trials() -> None:
    study = _study((0.5, 2.0, {SLO: 0.6}))
    study.add_trial(create_trial(state=TrialState.FAIL, constraints={SLO: 0.01}))
    n = nearest_trial(study)
    assert n is not None and n.number == 0


def test_finalize_says_it_re_measures_the_nearest(monkeypatch: pytest.MonkeyPatch) -> None:
    study = _study((0.5, 2.0, {SLO: 0.6}))
    said: list[str] = []
    monkeypatch.setattr(find_mod, "_measure_final", _Measured({}))
    ctx = SimpleNamespace(spec=SimpleNamespace(report_points=3))
    finalize(ctx, study, progress=said.append)  # type: ignore[arg-type]
    assert said == ["no feasible trial: re-measuring the nearest one on held-out data"]


def test_evenly_spaced_picks_k_of_n_from_both_ends() -> None:
    items = list(range(7))
    spaced = find_mod._evenly_spaced
    assert spaced(items, 0) == [] and spaced([], 3) == []
    assert spaced(items, 1) == [0]
    assert spaced(items, 2) == [0, 6]
    assert spaced(items, 3) == [0, 3, 6]
    assert spaced(items, 7) == items and spaced(items, 9) == items


# -- what a user reads when nothing was chosen -------------------------------------------
def _outcome(study: optuna.Study) -> str:
    import io

    from rich.console import Console

    from frontier.cli.render import outcome

    buf = io.StringIO()
    assert outcome(Console(file=buf, width=300), study, []) is False
    return " ".join(buf.getvalue().split())


def test_a_trial_that_passes_held_out_after_missing_at_search_is_named_with_its_command() -> None:
    # the case: trial 0 missed a floor at search time by one document and passes
    # on the larger held-out measurement
    study = _study((0.6, 1.6, {SLO: 0.1}), (0.9, 1.7, {SLO: 0.2}))
    _final(study, 0, feasible=True)
    study.set_user_attr(
        "frontier:final:0",
        {**study.user_attrs["frontier:final:0"], "violations": {SLO: -0.1, SLO2: -0.1}},
    )
    out = _outcome(study)
    assert "Pareto set of" not in out  # no empty table
    assert "the Pareto set is empty" in out
    assert "trial 0 (40.0% MLP removed) meets every SLO on its held-out figures" in out
    assert f"frontier export {study.study_name} 0 --out DIR" in out
    assert "no trial meets every SLO" not in out


def test_a_floor_the_final_figures_cannot_decide_is_said_so() -> None:
    study = _study((0.6, 1.6, {SLO: 0.1}))
    study.set_user_attr(
        "frontier:final:0",
        {
            "feasible": False,
            "ppl_ratio": 1.4,
            "violations": {SLO: -0.1, SLO2: 0.01},
            "undecided": [SLO2],
            "mlp_kept": 0.6,
            "params_kept": 0.6,
        },
    )
    out = _outcome(study)
    assert f"could not tell whether trial 0 (40.0% MLP removed) meets {SLO2}" in out
    assert f"frontier export {study.study_name} 0 --out DIR" in out
    # what would decide it: the spec read every report document (report_docs unset)
    assert "on every report document of the task's split" in out


def test_undecided_candidates_and_a_search_pass_not_re_measured_are_all_said() -> None:
    """The committed SmolLM2 task study's case: the two re-measured candidates could not
    be told on their report documents, and the nearest trial passed every SLO at search
    time but was never re-measured. All are said, the re-measured ones first (the
    largest first), and none as "misses" of nothing."""
    both = {SLO: -0.1, SLO2: -0.1}
    study = _study((0.6, 1.3, both), (0.62, 1.3, both), (0.64, 1.2, both))
    for number in (0, 1):
        study.set_user_attr(
            f"frontier:final:{number}",
            {
                "feasible": False,
                "ppl_ratio": 1.4,
                "violations": {SLO: -0.1, SLO2: 0.01},
                "undecided": [SLO2],
                "mlp_kept": study.trials[number].values[0],
                "params_kept": study.trials[number].values[0],
            },
        )
    out = _outcome(study)
    told = f"could not tell whether trial 0 (40.0% MLP removed) meets {SLO2}"
    told1 = f"could not tell whether trial 1 (38.0% MLP removed) meets {SLO2}"
    waiting = (
        "no point was chosen, but trial 2 (36.0% MLP removed) meets every SLO at search time "
        "and was not re-measured on held-out data"
    )
    assert told in out and told1 in out and waiting in out
    assert out.index(told) < out.index(told1) < out.index(waiting)
    assert "--report-points" in out
    assert "misses on" not in out and "which misses" not in out
    # a re-measured trial that also fails an SLO for certain is not "could not tell"
    record = dict(study.user_attrs["frontier:final:0"])
    study.set_user_attr(
        "frontier:final:0", {**record, "violations": {SLO: 0.1, SLO2: 0.01}, "undecided": [SLO2]}
    )
    study.set_user_attr("frontier:final:1", {**record, "violations": {SLO: 0.1, SLO2: 0.01}})
    out = _outcome(study)
    assert "could not tell whether" not in out and waiting in out
    assert "on every report document" not in out  # no hint: more documents would not help
    assert (
        f"trial 0 (40.0% MLP removed), which misses {SLO} (held-out ratio 1.400), "
        f"and could not tell {SLO2} (60.0% kept)" in out
    )


def test_the_closing_message_names_the_re_measured_trials_before_any_other() -> None:
    """The issue's run: both re-measured candidates keep 96.0% and 95.3% of arc_easy but
    their floors stay undecided; the nearest trial (the most removed, never a candidate)
    and a search-time pass not re-measured come after them."""
    floor = "arc_easy>=90%"
    met, low = {SLO: -0.1, floor: -0.05}, {SLO: -0.1, floor: 0.02}
    study = _study((0.531, 1.3, low), (0.6, 1.3, met), (0.62, 1.3, met), (0.64, 1.2, met))
    spec = small_spec("tiny", "sqlite:///unused.db", slos=(SLO, floor))
    study.set_user_attr(ATTR_SPEC, json.loads(json.dumps(spec.to_dict())))
    stopped = "arc_easy>=90% is undecided on 532 documents, and ..."
    for number, kept, retained in ((1, 0.6, 0.960), (2, 0.62, 0.953)):
        task = {
            "acc": 0.6 * retained,
            "baseline": 0.6,
            "retained": retained,
            "ci": [retained - 0.08, retained + 0.08],
            "confidence": 0.975,
            "n_docs": 2126,
            "looks": 4,
            "max_looks": 4,
        }
        if number == 2:  # its looks stopped early: the split could not decide it
            task.update(n_docs=532, looks=2, stopped=stopped)
        study.set_user_attr(
            f"frontier:final:{number}",
            {
                "feasible": False,
                "ppl_ratio": 1.4,
                "violations": {SLO: -0.1, floor: 0.01},
                "undecided": [floor],
                "mlp_kept": kept,
                "params_kept": kept,
                "tasks": {"arc_easy": task},
            },
        )
    out = _outcome(study)
    head = "no point was chosen; 2 trial(s) re-measured on held-out data, and why each"
    first = (
        f"could not tell whether trial 1 (40.0% MLP removed) meets {floor} (retained 96.0%, "
        "interval 88.0%-104.0% at 97.5%, on 2126 report documents in 4 looks, all it may read"
    )
    second = (
        f"trial 2 (38.0% MLP removed) was given up before its floors were decided: {stopped}; "
        f"{floor} (retained 95.3%, interval 87.3%-103.3% at 97.5%, on 532 report documents in "
        "2 looks of 4)"
    )
    assert head in out and first in out and second in out
    others = [out.index(f"trial {n} (") for n in (0, 3) if f"trial {n} (" in out]
    assert out.index(head) < out.index(first) < out.index(second) < min(others)
    assert "trial 3 (36.0% MLP removed) meets every SLO at search time" in out


def test_pareto_of_a_study_without_feasible_trials_prints_no_empty_table(capsys: Any) -> None:
    from frontier.cli.render import pareto
    from frontier.study.read import read_trials

    study = _study((0.6, 1.6, {SLO: 0.1}))
    pareto("s", read_trials(study, pareto_only=True), [], all_trials=False)
    out = " ".join(capsys.readouterr().out.split())
    assert "the Pareto set is empty" in out and "--all" in out and "┃" not in out
    pareto("s", read_trials(study), [], all_trials=True)
    assert "trial" in capsys.readouterr().out  # --all: the one trial is listed


def _set_final(study: optuna.Study, number: int, **record: Any) -> None:
    study.set_user_attr(f"frontier:final:{number}", record)


def test_choose_skips_spread_and_unjudged_records_and_reads_on() -> None:
    # trial 0: smallest, feasible held out but re-measured only to spread the front;
    # trial 1: its record has no verdict; trial 2: missed at search time (the nearest,
    # re-measured); trial 3: the one to choose
    study = _study(
        (0.4, 1.2, {SLO: -0.2}),
        (0.45, 1.2, {SLO: -0.2}),
        (0.5, 1.6, {SLO: 0.1}),
        (0.6, 1.3, {SLO: -0.1}),
    )
    _set_final(study, 0, feasible=True, spread=True, ppl_ratio=1.3)
    _set_final(study, 1, ppl_ratio=1.3)
    _set_final(study, 2, feasible=True, ppl_ratio=1.3)
    _set_final(study, 3, feasible=True, ppl_ratio=1.3)
    chosen = choose(study)
    assert chosen is not None and chosen.number == 3
    assert final_record(study, 3) == final_record(study, study.trials[3])
    assert final_record(study, 3) is not None and final_record(study, 9) is None


def test_choose_ties_read_the_search_figure_when_the_held_out_one_is_missing() -> None:
    study = _study((0.5, 1.2, {SLO: -0.2}), (0.5, 1.25, {SLO: -0.15}), (0.5, 1.1, {SLO: -0.3}))
    _set_final(study, 0, feasible=True)  # no held-out ppl: its search figure, 1.2
    _set_final(study, 1, feasible=True, ppl_ratio=1.3)
    _set_final(study, 2, feasible=True, ppl_ratio="inf")  # stored infinity: last
    chosen = choose(study)
    assert chosen is not None and chosen.number == 0
