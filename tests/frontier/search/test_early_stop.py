"""The early stop in a study: read from the stored trials, recorded, said, resumed, lifted."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from frontier.cli import main
from frontier.search.early_stop import StopWhenFlat, check_stop, lift_stop, steps_of, stopped_early
from frontier.search.find import find, worker
from frontier.search.storage import load_existing, n_finished
from frontier.study.early_stop import PATIENCE, EarlyStop, Step
from frontier.study.read import read_summary
from frontier.study.schema import ATTR_EARLY_STOP, ATTR_FAILED, ATTR_SEARCH, ATTR_WARM
from frontier.study.spec import stored_spec
from frontier.testing import SMALL_STUDY_FLAGS

RULE = EarlyStop(patience=3, noise=0.01)


def _study(tmp_path: Path) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}", directions=["minimize"] * 2
    )


def _add(
    study: optuna.Study,
    removed: float | None,
    *,
    ok: bool = True,
    warm: str | None = None,
    state: TrialState = TrialState.COMPLETE,
    failed: bool = False,
) -> None:
    """A trial as another process would store it: size, SLO verdict, warm-start label."""
    attrs: dict[str, object] = {} if removed is None else {ATTR_SEARCH: {"mlp_kept": 1 - removed}}
    if warm:
        attrs[ATTR_WARM] = warm
    if failed:
        attrs[ATTR_FAILED] = "ppl is NaN"
    done = state == TrialState.COMPLETE
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            values=[1 - (removed or 0.0), 1.5] if done else None,
            user_attrs=attrs,
            constraints={"ppl<2": -0.1 if ok else 0.2} if done else None,
        )
    )


def test_the_rule_reads_the_stored_trials_and_records_its_decision(tmp_path: Path) -> None:
    study = _study(tmp_path)
    _add(study, 0.40, warm="uniform-bisect-0.600")
    _add(study, 0.45, warm="global-0.55")
    _add(study, 0.60, ok=False)  # infeasible
    _add(study, 0.50, state=TrialState.PRUNED)  # screened
    _add(study, None, state=TrialState.FAIL)  # interrupted: not finished, not counted
    _add(study, None, state=TrialState.RUNNING)  # another worker's, in flight
    assert [(s.number, s.warm, s.feasible) for s in steps_of(study)] == [
        (0, True, True),
        (1, True, True),
        (2, False, False),
        (3, False, False),
    ]
    assert check_stop(study, RULE) is None and stopped_early(study) is None
    _add(study, None, state=TrialState.FAIL, failed=True)  # NaN: finished, counts
    rec = check_stop(study, RULE)
    assert rec is not None and rec["trial"] == 6 and rec["best_trial"] == 1
    assert rec["finished_trials"] == 5 and rec["searched_trials"] == 3
    assert study.user_attrs[ATTR_EARLY_STOP] == rec
    assert steps_of(study)[-1] == Step(6, warm=False, feasible=False, mlp_removed=None)
    # a trial that improves, stored after the stop (a worker's in flight), lifts it
    _add(study, 0.50)
    assert check_stop(study, RULE) is None and stopped_early(study) is None
    for _ in range(3):
        _add(study, 0.30)
    assert check_stop(study, RULE) == {**rec, "trial": 10, "best_trial": 7, "best_mlp_removed": 0.5,
                                       "searched_trials": 7, "finished_trials": 9}  # fmt: skip
    assert lift_stop(study) and stopped_early(study) is None and not lift_stop(study)


def test_the_callback_stops_the_optimisation_and_says_so_once(tmp_path: Path) -> None:
    study = _study(tmp_path)
    _add(study, 0.40, warm="uniform-bisect-0.600")
    said: list[str] = []

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        trial.set_user_attr(ATTR_SEARCH, {"mlp_kept": 0.7})
        trial.set_constraint("ppl<2", -0.1)
        return 0.7, 1.5

    study.optimize(objective, n_trials=20, callbacks=[StopWhenFlat(RULE, said.append)])
    assert n_finished(study) == 1 + RULE.patience
    assert said == [
        "search stopped early after trial 3: 3 sampled trials in a row found no plan meeting "
        "the SLOs that removes more than 1 point(s) of MLP more than trial 0's 40.0%"
    ]


@pytest.mark.slow  # a whole study (or real task data): make test-slow
def test_a_study_stops_early_says_so_and_a_resumed_one_decides_the_same(
    tiny_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    trials = PATIENCE + 8  # more than the opening and the patience need
    argv = ["find", "--model", str(tiny_folder), "--trials", str(trials), *SMALL_STUDY_FLAGS]
    assert main([*argv, "--no-report"]) == 0
    out, err = capsys.readouterr()
    study = load_existing("tiny-llama", "sqlite:///studies/tiny-llama.db")
    rec = stopped_early(study)
    assert rec is not None, out
    steps = steps_of(study)
    # the tiny model's bisection ends at min_keep, which no sampled plan can beat: the
    # search stops after exactly PATIENCE sampled trials, its last one
    assert sum(not s.warm for s in steps) == PATIENCE == rec["patience"]
    assert rec["trial"] == steps[-1].number and rec["finished_trials"] == len(steps) < trials
    assert rec["best_trial"] in {s.number for s in steps if s.warm}
    # said on the progress channel, in the trial lines and under the outcome
    assert "… search stopped early after trial" in err
    assert f"trial {len(steps)}/{trials} done" in out and "the search stopped early" in out
    assert f"search stopped early after trial {rec['trial']}" in " ".join(out.split())
    assert read_summary(study).protocol["stopped_early"] == rec
    assert study.user_attrs["frontier:protocol"]["early_stop"] == EarlyStop().to_dict()
    assert main(["pareto", "tiny-llama", "--storage", "sqlite:///studies/tiny-llama.db"]) == 0
    assert "search stopped early" in capsys.readouterr().out
    # the decision is the stored trials', not the run's: made again from them, it is the same
    assert lift_stop(study) and check_stop(study, EarlyStop()) == rec
    # resumed, or joined by a worker, the study decides the same: no more trials
    spec = stored_spec(study)
    again = find(spec, progress=print)
    assert again.ran == 0 and stopped_early(again.study) == rec
    assert "no more trials (--no-early-stop searches on)" in capsys.readouterr().out
    assert worker(spec.study_name, spec.storage_url) == 0
    # with the early stop off the study runs all its trials
    off = find(spec.replace(early_stop=False))
    assert off.ran == trials - len(steps) and n_finished(off.study) == trials
    assert stopped_early(off.study) is None
