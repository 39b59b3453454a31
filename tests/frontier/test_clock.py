"""The time-left estimate of long work."""

from __future__ import annotations

import pytest

from frontier import _clock
from frontier._clock import Clock, duration


def test_durations_read_naturally() -> None:
    assert [duration(s) for s in (5, 89, 90, 600, 5399, 5400, 9000)] == [
        "5 s",
        "89 s",
        "2 min",
        "10 min",
        "90 min",
        "1.5 h",
        "2.5 h",
    ]


def test_the_estimate_uses_this_runs_pace_only(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(_clock.time, "monotonic", lambda: now[0])
    clock = Clock(10)
    clock.skip(4)  # an earlier run's work: done, but no pace
    assert clock.eta() == ""
    now[0] += 60.0
    clock.advance(2)  # 2 units in 60 s: 4 left take 120 s
    assert clock.eta() == ", about 2 min left"
    clock.advance(4)
    assert clock.eta() == ""  # finished
