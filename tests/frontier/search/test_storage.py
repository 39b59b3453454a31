"""Opening studies, their stored spec and fingerprint, counting finished trials."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from frontier.errors import FrontierError
from frontier.search import storage as st
from frontier.study import schema
from frontier.study.spec import StudySpec


def _study(tmp_path: Path, name: str = "s") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=name, storage=f"sqlite:///{tmp_path / 'x.db'}", directions=["minimize"] * 2
    )


def test_load_existing_never_creates_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FrontierError, match="does not exist"):
        st.load_existing("s", f"sqlite:///{tmp_path / 'typo.db'}")
    assert not (tmp_path / "typo.db").exists()
    _study(tmp_path, "real")
    with pytest.raises(FrontierError, match="studies there: real"):
        st.load_existing("other", f"sqlite:///{tmp_path / 'x.db'}")
    assert st.load_existing("real", f"sqlite:///{tmp_path / 'x.db'}").study_name == "real"


def test_spec_and_fingerprint_are_written_once_and_checked(tmp_path: Path) -> None:
    study = _study(tmp_path)
    with pytest.raises(FrontierError, match="not made by frontier"):
        st.stored_spec(study)
    spec = StudySpec(model="m", slos=("ppl<2",), calibration_tokens=100)
    st.initialise(study, spec, "fp1", "model-fp")
    st.initialise(study, spec.replace(model="other"), "fp2", "model-fp2")  # already set up
    assert st.stored_spec(study) == spec
    assert study.user_attrs[schema.ATTR_FINGERPRINT] == "fp1"
    st.check_fingerprint(study, spec, "fp1")
    with pytest.raises(FrontierError, match=r"calibration_tokens: 100 -> 200"):
        st.check_fingerprint(study, spec.replace(calibration_tokens=200), "fp3")


def test_finished_counts_measured_and_evaluation_failures_only(tmp_path: Path) -> None:
    study = _study(tmp_path)
    for state, attrs in (
        (TrialState.COMPLETE, {}),
        (TrialState.PRUNED, {}),
        (TrialState.FAIL, {schema.ATTR_FAILED: "ppl is NaN"}),
        (TrialState.FAIL, {}),  # a killed worker: retried, not counted
    ):
        values = [0.5, 1.2] if state == TrialState.COMPLETE else None
        study.add_trial(optuna.trial.create_trial(state=state, values=values, user_attrs=attrs))
    assert [st.finished(t) for t in study.trials] == [True, True, True, False]
    assert st.n_finished(study) == 3
    study.optimize(lambda _t: (0.5, 1.0), n_trials=10, callbacks=[st.StopAfter(5)])
    assert st.n_finished(study) == 5  # all workers' trials count, the uncounted one not


def test_samplers_by_name_and_passwords_redacted() -> None:
    assert isinstance(st.make_sampler("nsga2", 0), optuna.samplers.NSGAIISampler)
    assert isinstance(st.make_sampler("random", 0), optuna.samplers.RandomSampler)
    with pytest.raises(FrontierError, match="unknown sampler"):
        st.make_sampler("cmaes", 0)
    with pytest.raises(FrontierError) as err:
        st.open_storage("postgresql+nodriver://user:secret@db/x")
    assert "secret" not in str(err.value) and "***@db/x" in str(err.value)
