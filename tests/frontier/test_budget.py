"""What a run may take of this machine: the host budget and the machine's readers."""

from __future__ import annotations

import pytest

from frontier import budget, settings


def test_the_real_reader_sees_this_machine() -> None:
    have = budget.available_host_bytes()
    assert have is None or have > 0
    assert budget.resident_bytes() > 0


def test_the_budget_is_the_setting_else_a_share_of_what_there_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "_memory_budget", None)
    monkeypatch.delenv("FRONTIER_MEMORY_GB", raising=False)
    monkeypatch.setattr(budget, "available_host_bytes", lambda: 10 * 2**30)
    monkeypatch.setattr(budget, "resident_bytes", lambda: 2 * 2**30)
    assert budget.host_budget() == int(12 * 2**30 * budget.DEFAULT_SHARE)
    monkeypatch.setenv("FRONTIER_MEMORY_GB", "3.5")
    assert budget.host_budget() == int(3.5 * 2**30)
    settings.set_memory_budget(2.0)
    assert budget.host_budget() == 2 * 2**30
    monkeypatch.setattr(budget, "available_host_bytes", lambda: None)
    monkeypatch.delenv("FRONTIER_MEMORY_GB")
    settings.set_memory_budget(None)
    assert budget.host_budget() is None  # nothing known: no limit


def test_off_a_gpu_a_trial_parks_nothing() -> None:
    from frontier.testing import tiny_model

    assert budget.trial_room(tiny_model("llama")) is None
