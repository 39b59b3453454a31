"""Progress where stdout is not a terminal: plain lines at a steady pace (n/N, best, ETA)."""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path

import optuna
import pytest

from frontier.cli import main, render
from frontier.search.display import LiveProgress
from frontier.search.progress import PlainProgress, clock_time
from frontier.testing import SMALL_STUDY_FLAGS

LINE = re.compile(r"^trial (\d+)/(\d+) done \((\w+)\); best feasible: (.+); [\d.]+ s/trial; ETA ")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _study_with(n: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["minimize", "minimize"])
    for i in range(n):
        study.add_trial(
            optuna.trial.create_trial(
                values=[1.0 - i / 100, 1.0 + i / 100],
                user_attrs={"frontier:search": {"mlp_kept": 1.0 - i / 100}},
            )
        )
    return study


def _run_trials(shown: PlainProgress, clock: Clock, n: int) -> None:
    """Trials 1..n finishing one a second."""
    for i in range(n):
        clock.now += 1.0
        study = _study_with(i + 1)
        shown(study, study.trials[-1])


def test_lines_come_at_most_every_interval_and_for_the_first_and_last_trial() -> None:
    clock, out = Clock(), io.StringIO()
    shown = PlainProgress(30, stream=out, interval=10.0, heartbeat=0, clock=clock)
    study = _study_with(0)
    shown.start(study)
    _run_trials(shown, clock, 30)
    shown.stop()
    lines = out.getvalue().splitlines()
    assert lines[0] == "trials: 0/30 finished before this run"
    done = [int(m[1]) for m in map(LINE.match, lines[1:]) if m]
    assert len(done) == len(lines) - 1  # every other line is a trial line
    assert done == [1, 11, 21, 30]  # the first, one per 10 s, the last
    assert lines[-1].endswith("ETA 0:00")
    assert "best feasible: 29.0% MLP removed" in lines[-1]
    assert lines[2].endswith("1.0 s/trial; ETA 0:19")  # 11 done, 19 left at 1 s each


def test_a_search_that_stops_early_says_so_in_its_line_at_once() -> None:
    clock, out = Clock(), io.StringIO()
    shown = PlainProgress(30, stream=out, interval=10.0, heartbeat=0, clock=clock)
    shown.start(_study_with(0))
    for i in range(3):
        clock.now += 1.0
        study = _study_with(i + 1)
        if i == 2:  # the early stop recorded by its callback, which runs first
            study.set_user_attr("frontier:early_stop", {"trial": 2, "patience": 2})
        shown(study, study.trials[-1])
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("trial 3/30 done") and "ETA 0:00" in lines[-1]
    assert lines[-1].endswith("; the search stopped early")
    assert shown.total == 3  # no still-working lines while the final stage runs
    clock.now += 1.0  # a trial after the stop (a resumed study's family, the fallback)
    study = _study_with(4)
    study.set_user_attr("frontier:early_stop", {"trial": 2, "patience": 2})
    shown(study, study.trials[-1])
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("trial 4/30 done") and "ETA 0:00" in last
    assert shown.total == 4


def test_a_long_trial_gets_a_still_working_line() -> None:
    out = io.StringIO()
    shown = PlainProgress(3, stream=out, interval=0.05, heartbeat=0.2)
    shown.start(_study_with(0))
    time.sleep(0.7)
    shown.stop()
    lines = out.getvalue().splitlines()
    assert any(line.startswith("still working: 0/3 trials done, the last 0:0") for line in lines)
    assert len(lines) < 8  # one per heartbeat, not one per tick


def test_a_noted_activity_names_the_still_working_line_after_the_search() -> None:
    clock, out = Clock(), io.StringIO()
    shown = PlainProgress(2, stream=out, interval=10.0, heartbeat=60.0, clock=clock)
    shown.start(_study_with(0))
    _run_trials(shown, clock, 2)
    clock.now += 100.0  # the search is over, nothing noted: no line
    assert shown.heartbeat_line(clock.now) is None
    shown.note("held-out: trial 1, candidate 1 of up to 12")
    clock.now += 30.0
    assert shown.heartbeat_line(clock.now) == (
        "still working: held-out: trial 1, candidate 1 of up to 12 (for 0:30; 2/2 trials done)"
    )
    shown._write("a line")  # a line was just written: the next is a heartbeat later
    assert shown.heartbeat_line(clock.now + 59.0) is None
    assert shown.heartbeat_line(clock.now + 60.0) is not None


def test_a_resumed_study_whose_search_stopped_early_has_no_trials_left() -> None:
    clock, out = Clock(), io.StringIO()
    shown = PlainProgress(30, stream=out, interval=10.0, heartbeat=60.0, clock=clock)
    study = _study_with(3)
    study.set_user_attr("frontier:early_stop", {"trial": 2, "patience": 2})
    shown.start(study)  # the final stage runs next: not "still working: 3/30 trials done"
    clock.now += 61.0
    assert shown.total == 3 and shown.heartbeat_line(clock.now) is None


def test_a_finished_trial_clears_the_noted_activity() -> None:
    clock, out = Clock(), io.StringIO()
    shown = PlainProgress(5, stream=out, interval=10.0, heartbeat=60.0, clock=clock)
    shown.start(_study_with(0))
    shown.note("bisecting the uniform limit")
    clock.now += 61.0
    assert "bisecting the uniform limit" in (shown.heartbeat_line(clock.now) or "")
    study = _study_with(1)
    shown(study, study.trials[-1])
    clock.now += 61.0
    assert shown.heartbeat_line(clock.now) == "still working: 1/5 trials done, the last 1:01 ago"


def test_the_live_bar_shows_the_noted_activity_in_its_status() -> None:
    from rich.console import Console

    shown = LiveProgress(Console(file=io.StringIO()), 3)
    shown.start(_study_with(0))
    shown.note("held-out: trial 7, candidate 1 of up to 12")
    long = "x" * 100
    status = shown.progress.tasks[0].fields["status"]
    shown.note(long)
    shown.stop()
    assert status == "held-out: trial 7, candidate 1 of up to 12"
    assert shown.progress.tasks[0].fields["status"] == "x" * 59 + "…"


def test_clock_time() -> None:
    assert clock_time(59.6) == "1:00" and clock_time(3725) == "1:02:05" and clock_time(-3) == "0:00"


def test_a_terminal_gets_the_live_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert isinstance(render.trial_progress(render.console(), 5), LiveProgress)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert isinstance(render.trial_progress(render.console(), 5), PlainProgress)


def test_find_off_a_terminal_prints_progress_lines(
    tiny_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    noted: list[str] = []

    class Recording(PlainProgress):
        def note(self, message: str) -> None:
            noted.append(message)
            super().note(message)

    monkeypatch.setattr(render, "trial_progress", lambda _con, total: Recording(total))
    argv = ["find", "--model", str(tiny_folder), "--slo", "ppl<1.5", "--trials", "4"]
    assert main([*argv, *SMALL_STUDY_FLAGS, "--no-report"]) in (0, 3)
    out, err = capsys.readouterr()
    # the library's messages reach stderr and the tracker alike (its still-working lines)
    assert any(m.startswith("held-out: trial") for m in noted), noted
    assert all(f"… {m}" in err for m in noted)
    assert not sys.stdout.isatty()
    lines = [m for m in map(LINE.match, out.splitlines()) if m]
    assert lines, out
    assert lines[0][1] == "1" and lines[-1][1] == "4"  # the first and the last trial
    assert all(m[2] == "4" for m in lines)  # n/N with the study's total
    assert "trials: 0/4 finished before this run" in out
    assert not (tmp_path / "studies" / "results").exists()  # --no-report
