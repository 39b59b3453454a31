"""One trial's final measurement: its plan applied once, task documents read until decided.

The final stage (:func:`frontier.search.find.finalize`) measures a candidate's held-out
perplexity, its check texts and its size with the plan applied, then its tasks with
:meth:`~objectives.Objective.decide`: the report documents are read in looks of growing
size until every task floor is decided or the task's documents (``report_docs``, by
default the whole split past the search pool) are used up, each look judged at
``1 - (1 - confidence) / looks``. The unpruned model's scores of a look are taken the
first time a look is read in a study (the plan is taken off for them and put back,
:class:`Applied`) and cached on disk, so later candidates score only the pruned model.

A trial re-measured only to spread the front reads one look: it is never chosen, so
nothing is decided on it; nor is one whose held-out perplexity already fails an SLO. The
looks also stop once no more documents can make a candidate meet every floor: a floor
failed, or the documents left would decide an undecided one as met with a predictive
probability below 2% (:func:`objectives._tasks_final.hopeless`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from frontier.search.context import CHECK_PREFIX, SearchContext
from frontier.search.trial import measured_metrics
from objectives import Measurement, Objective

if TYPE_CHECKING:
    from frontier.pruning.operator import PruningOperator
    from frontier.pruning.plan import Plan


class Applied:
    """``plan`` applied to the model for a ``with`` block; :meth:`set` takes it off
    (False) and puts it back (True) within it, and the block's end takes it off."""

    def __init__(self, pruner: PruningOperator, plan: Plan) -> None:
        self.pruner, self.plan = pruner, plan
        self.on = False
        self.applied = 0  # times the plan was applied: 1 unless looks needed the unpruned

    def set(self, pruned: bool) -> None:
        if pruned and not self.on:
            self.pruner.apply(self.plan)
            self.on, self.applied = True, self.applied + 1
        elif not pruned and self.on:
            self.pruner.restore()
            self.on = False

    def __enter__(self) -> Applied:
        self.set(True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.set(False)


@dataclass(frozen=True)
class Measured:
    """One trial's final figures, as the final record is made of them."""

    size: Measurement
    ppl: Measurement
    tasks: Measurement | None
    checks: Mapping[str, Measurement]
    applied: int  # times the plan was applied (looks that scored the unpruned model: more)


def measure(
    ctx: SearchContext,
    plan: Plan,
    objectives: Mapping[str, Objective],
    *,
    spread: bool,
    progress: Callable[[str], None] | None = None,
) -> Measured:
    """Measure ``plan`` with the report ``objectives`` (``ppl``, ``tasks``, ``check:*``);
    the tasks decided in looks, or on their first look only for a ``spread`` trial."""
    with Applied(ctx.pruner, plan) as applied:
        size = ctx.size.evaluate(ctx.lm)
        ppl = objectives["ppl"].evaluate(ctx.lm)
        checks = {
            k.removeprefix(CHECK_PREFIX): o.evaluate(ctx.lm)
            for k, o in objectives.items()
            if k.startswith(CHECK_PREFIX)
        }
        tasks = None
        if "tasks" in objectives:
            obj = objectives["tasks"]
            failed = held_out_failures(ctx, size, ppl)
            if failed and not spread and progress is not None:
                progress(f"{', '.join(failed)} failed held out: the tasks read one look")
            if spread or failed:
                tasks = obj.evaluate(ctx.lm)  # no floor can make it a choice: one look
            else:
                tasks = obj.decide(ctx.lm, applied.set, progress)
    return Measured(size, ppl, tasks, checks, applied.applied)


def held_out_failures(ctx: SearchContext, size: Measurement, ppl: Measurement) -> list[str]:
    """The SLOs the held-out figures other than the tasks' already fail: a candidate
    failing one is not chosen whatever its task floors read."""
    metrics = measured_metrics(size, ppl, None, ctx.final_side)
    return [str(s) for s in ctx.slos if (s.violation(metrics) or 0.0) > 0]


def record_looks(final: Mapping[str, Any] | None) -> dict[str, int] | None:
    """Each task's looks a final record used (None where it names none: a record from
    before the final stage read in looks), so that a later measurement (``verify``, a
    repair's after) reads the same documents."""
    tasks = (final or {}).get("tasks") or {}
    looks = {
        name: int(d["looks"])
        for name, d in tasks.items()
        if isinstance(d, Mapping) and isinstance(d.get("looks"), int)
    }
    return looks or None


__all__ = ["Applied", "Measured", "held_out_failures", "measure", "record_looks"]
