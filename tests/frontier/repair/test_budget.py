"""A repair's CPU budget: the steps it still allows, evaluations included."""

from __future__ import annotations

from frontier.repair import _budget


def test_the_budget_counts_steps_with_their_evaluations(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = [10.0]
    monkeypatch.setattr(_budget.time, "process_time", lambda: clock[0])
    b = _budget.CpuBudget(seconds=104.0, start=10.0, eval_every=4)
    assert b.steps_left() is None and b.room_for_step()  # nothing timed yet
    b.evaluated(4.0)
    b.stepped(1.0)
    clock[0] = 15.0  # 99 s left: 4 for the closing evaluation, 2 a step (1 + 4 / 4)
    assert b.steps_left() == 47
    clock[0] = 109.0  # 5 s left: one step and the closing evaluation
    assert b.room_for_step()
    clock[0] = 109.5
    assert not b.room_for_step()
    unlimited = _budget.CpuBudget(seconds=None, start=0.0, eval_every=4)
    assert unlimited.steps_left() is None and unlimited.room_for_step()
