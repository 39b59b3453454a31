"""A repair's CPU-minute budget, spent so that it ends on a kept, evaluated step.

A budget that simply stops the loop when it runs out wastes two things: the learning-rate
schedule, laid out over ``steps``, is cut off while the rate is still high, and the steps
since the last held-out evaluation are thrown away (the loop keeps the best *evaluated*
weights). At 65% of SmolLM2's MLP removed, 20 CPU-minutes of a 150-step repair ended
with the rate still high and kept step 80.

:class:`CpuBudget` measures what a training step and a held-out evaluation cost in CPU
seconds, as the run goes, and says

- how many steps the rest of the budget allows (:meth:`CpuBudget.steps_left`), periodic
  evaluations and one closing evaluation included, so that the schedule can end where the
  budget does;
- whether one more step still leaves room for the closing evaluation
  (:meth:`CpuBudget.room_for_step`), so that the last steps are evaluated and can be kept.

Without a budget it allows everything (:meth:`CpuBudget.left` is infinite), and a run is
exactly what it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class CpuBudget:
    """``seconds`` of process CPU time from ``start`` (None: no budget)."""

    seconds: float | None
    start: float
    eval_every: int
    step_cpu: float = 0.0
    steps: int = 0
    eval_cpu: float = 0.0
    evals: int = 0

    def left(self) -> float:
        """CPU seconds still to spend (infinite without a budget)."""
        if self.seconds is None:
            return float("inf")
        return self.seconds - (time.process_time() - self.start)

    def stepped(self, cpu: float) -> None:
        self.step_cpu += cpu
        self.steps += 1

    def evaluated(self, cpu: float) -> None:
        self.eval_cpu += cpu
        self.evals += 1

    def _step(self) -> float:
        return self.step_cpu / self.steps if self.steps else 0.0

    def _eval(self) -> float:
        return self.eval_cpu / self.evals if self.evals else 0.0

    def steps_left(self) -> int | None:
        """The steps the rest of the budget allows, each with its share of the periodic
        evaluations, after reserving the closing one; None without a budget or before a
        step has been timed."""
        if self.seconds is None or not self.steps:
            return None
        per_step = self._step() + self._eval() / self.eval_every
        return max(int((self.left() - self._eval()) // per_step), 0)

    def room_for_step(self) -> bool:
        """Whether one more step, and the closing evaluation after it, fit what is left."""
        return self.left() >= self._step() + self._eval()


__all__ = ["CpuBudget"]
