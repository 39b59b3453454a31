"""Real signals to a real ``frontier find`` process mid-trial, then a resume to completion.

Whatever stops the first run, the resumed study must keep every trial finished before
the stop exactly as it was, never count the interrupted trial as finished, end with
exactly ``--trials`` finished trials and report the Pareto set of those trials.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from frontier.search.storage import finished

N = 5  # trials of the study
K = 2  # finished before the signal; trial K is the one interrupted
HEARTBEAT = 1  # seconds; a SIGKILLed trial is stale after 3 of them


SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]


# SIGINT in the default run; SIGTERM and SIGKILL (30 s each) in make test-slow
@pytest.mark.parametrize(
    "sig",
    [pytest.param(s, marks=() if s == signal.SIGINT else pytest.mark.slow) for s in SIGNALS],
    ids=[s.name for s in SIGNALS],
)
def test_signal_mid_trial_then_resume(
    sig: signal.Signals, cli: Any, tiny_folder: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    args = cli.find_args(tiny_folder, url, N)
    env = cli.env(FRONTIER_HEARTBEAT_INTERVAL=str(HEARTBEAT))
    first = cli.start(args, stall_trial=K, env=env)

    def stalled() -> Any:
        study = cli.load(url)
        t = study.get_trials(deepcopy=False)
        return study if len(t) > K and t[K].user_attrs.get("test:stalled") else None

    study = cli.wait_for(f"trial {K} to stall", stalled, 180, first)
    before = {
        t.number: (t.state, t.params, t.values, t.user_attrs)
        for t in study.get_trials()
        if finished(t)
    }
    assert sorted(before) == list(range(K))
    first.popen.send_signal(sig)
    rc = first.wait(180)  # a hang guard, not a timing: stacks are dumped if it trips

    cut = cli.load(url).trials[K]
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
        assert cut.state == TrialState.RUNNING  # only its heartbeat can tell it is dead
        time.sleep(3 * HEARTBEAT + 0.5)  # let it go stale (a real restart takes longer)
    else:
        # a clean stop: one line, the shell's status for the signal, trial marked failed
        assert rc == 128 + sig, first.stderr[-2000:]
        assert "Traceback" not in first.stderr
        assert first.stderr.rstrip().splitlines()[-1] == "interrupted"
        assert cut.state == TrialState.FAIL
    assert not finished(cut)
    assert not [t.number for t in cli.load(url).trials if finished(t) and t.number not in before]

    t0 = time.monotonic()
    again = cli.run(args, FRONTIER_HEARTBEAT_INTERVAL=str(HEARTBEAT))
    resume_s = time.monotonic() - t0
    assert again.popen.returncode == 0, again.stderr[-3000:]
    assert resume_s < 120  # the resume never waits for the dead trial

    study = cli.load(url)
    trials = study.get_trials()
    # every trial finished before the stop is still there, unchanged
    for number, old in before.items():
        t = trials[number]
        assert (t.state, t.params, t.values, t.user_attrs) == old
    # the interrupted trial is failed, never counted; retried at most once
    cut = trials[K]
    assert cut.state == TrialState.FAIL and not finished(cut)
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == K]
    assert len(retries) <= 1
    if sig == signal.SIGKILL:
        # the resumed run found the stale trial, failed it and queued its plan again
        # (queued after the warm starts still waiting, so it may not have run yet)
        assert len(retries) == 1
        retry = retries[0]
        assert retry.state in (TrialState.WAITING, TrialState.COMPLETE, TrialState.PRUNED)
        assert retry.params == cut.params
        assert retry.user_attrs["frontier:plan"] == cut.user_attrs["frontier:plan"]
        assert "test:stalled" not in retry.user_attrs  # no half-written results copied
    # exactly N finished, none counted twice, nothing left running
    done = [t for t in trials if finished(t)]
    assert len(done) == N
    assert len({t.number for t in done}) == N
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    # the reported Pareto set is the one recomputed from the finished trials
    directions = [d.name.lower() for d in study.directions]
    expected = cli.pareto_numbers(trials, directions)
    assert expected
    assert {t.number for t in study.best_trials} == expected
    from frontier.study.read import read_trials

    found = read_trials(study, pareto_only=True)
    assert {r.number for r in found} == expected
    chosen = [r for r in found if r.chosen]  # re-measured on held-out text and chosen
    assert len(chosen) == 1 and chosen[0].final is not None
