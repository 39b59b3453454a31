"""The pieces behind clean stops and resumes, in-process: signals, retries, seeds."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from frontier import _signals
from frontier.errors import FrontierError
from frontier.search import storage as st


@pytest.fixture
def default_sigterm() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s in saved:
        signal.signal(s, signal.SIG_DFL)
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


@pytest.mark.usefixtures("default_sigterm")
def test_sigterm_raises_keyboard_interrupt_with_its_exit_status() -> None:
    _signals.install()
    with pytest.raises(KeyboardInterrupt) as info:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs at once; never reached
    assert isinstance(info.value, _signals.Interrupted)
    assert _signals.exit_status(info.value) == 143
    assert _signals.exit_status(KeyboardInterrupt()) == 130


@pytest.mark.usefixtures("default_sigterm")
def test_install_keeps_a_handler_set_by_the_application() -> None:
    def mine(_signum: int, _frame: object) -> None:
        pass

    signal.signal(signal.SIGTERM, mine)
    _signals.install()
    assert signal.getsignal(signal.SIGTERM) is mine
    assert signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL


def test_heartbeat_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(st.HEARTBEAT_ENV, raising=False)
    assert st.heartbeat() == (st.HEARTBEAT_INTERVAL, st.GRACE_PERIODS * st.HEARTBEAT_INTERVAL)
    monkeypatch.setenv(st.HEARTBEAT_ENV, "2")
    assert st.heartbeat() == (2, 6)
    for bad in ("0", "soon"):
        monkeypatch.setenv(st.HEARTBEAT_ENV, bad)
        with pytest.raises(FrontierError, match=st.HEARTBEAT_ENV):
            st.heartbeat()


def test_missing_database_driver_is_named() -> None:
    pytest.importorskip("sqlalchemy")
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        with pytest.raises(FrontierError, match=r"install mysqlclient"):
            st.open_storage("mysql://u:secret@127.0.0.1:1/x")
    else:
        pytest.skip("mysqlclient is installed here")


def test_run_seed_differs_on_resume_and_per_worker() -> None:
    assert st.run_seed(7, 0) == 7  # a new study: reproducible with --seed
    assert st.run_seed(7, 12) == st.run_seed(7, 12)  # a resume: still reproducible
    assert len({st.run_seed(7, 0), st.run_seed(7, 12), st.run_seed(7, 13)}) == 3
    workers = {st.run_seed(7, 12, worker=True) for _ in range(8)}
    assert len(workers) > 1


DIST = {"x": FloatDistribution(0.2, 1.0, step=0.025)}


def _add(study: optuna.Study, state: TrialState, x: float, **attrs: object) -> None:
    study.add_trial(
        optuna.create_trial(
            state=state,
            params={"x": x},
            distributions=DIST,
            values=[x, 1.0] if state == TrialState.COMPLETE else None,
            user_attrs=dict(attrs),
        )
    )


def test_requeue_interrupted_retries_each_cut_trial_once(tmp_path: Path) -> None:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/r.db", directions=["minimize", "minimize"]
    )
    _add(study, TrialState.COMPLETE, 0.5)
    _add(study, TrialState.FAIL, 0.6, **{"frontier:plan": {"w": [8]}, "frontier:search": {}})
    _add(study, TrialState.FAIL, 0.7, **{"frontier:failed": "ppl is NaN"})
    assert st.requeue_interrupted(study) == [1]
    assert st.requeue_interrupted(study) == []  # already queued once
    copy = study.get_trials()[-1]
    assert copy.state == TrialState.WAITING and copy.params == {"x": 0.6}
    assert copy.user_attrs == {"frontier:plan": {"w": [8]}}  # results are not carried over
    assert copy.system_attrs["failed_trial"] == 1
    # the retry is cut short too: not a third time
    study.tell(study.ask().number, state=TrialState.FAIL)
    assert study.get_trials()[-1].state == TrialState.FAIL
    assert st.requeue_interrupted(study) == []
    assert st.n_finished(study) == 2  # the complete one and the NaN one
