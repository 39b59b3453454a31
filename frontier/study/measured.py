"""What one evaluation measured, as the SLO language reads it: a task's score
(:class:`TaskScore`) and a trial's figures (:class:`TrialMetrics`).

Plain values, torch-free like :mod:`frontier.study.slo`, which checks them against SLOs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Side", "TaskScore", "TrialMetrics"]

#: Which figure of a task's interval an SLO reads: the point estimate, the end most in its
#: favour (search: never reject what might pass) or the end least in it (final verdict).
Side = Literal["estimate", "optimistic", "pessimistic"]


@dataclass(frozen=True)
class TaskScore:
    """One task's accuracy on the model being evaluated, and on the unpruned model, with
    the intervals of both figures where they were measured on paired documents."""

    acc: float
    baseline: float | None = None
    acc_ci: tuple[float, float] | None = None
    retention_ci: tuple[float, float] | None = None
    # retention measured on the trial's own documents, paired with the unpruned model's
    # (adaptive documents: not acc / baseline when baseline is on other documents)
    paired: float | None = None

    @classmethod
    def from_details(cls, d: Mapping[str, Any]) -> TaskScore:
        """From one task's figures as the tasks objective reports them (its ``acc``,
        ``baseline``, and where measured paired, ``acc_ci`` and ``ci``)."""

        def pair(x: Any) -> tuple[float, float] | None:
            return None if x is None else (float(x[0]), float(x[1]))

        return cls(
            acc=float(d["acc"]),
            baseline=d.get("baseline"),
            acc_ci=pair(d.get("acc_ci")),
            retention_ci=pair(d.get("ci")),
        )

    def bound(self, relative: bool, side: Side) -> float | None:
        """The figure an SLO reads on ``side`` (fractions: 0.9 = keeps 90%)."""
        value = self.retention if relative else self.acc
        ci = self.retention_ci if relative else self.acc_ci
        if side == "estimate" or value is None or ci is None:
            return value
        return {"optimistic": ci[1], "pessimistic": ci[0]}[side]

    @property
    def retention(self) -> float | None:
        """``acc / baseline`` (or the paired figure); None without a (positive) baseline,
        where it is undefined."""
        if self.baseline is None or not self.baseline > 0:
            return None
        return self.paired if self.paired is not None else self.acc / self.baseline


@dataclass(frozen=True)
class TrialMetrics:
    """What one evaluation measured; any figure not measured (yet) is None.

    Fractions, not percentages: ``params_kept=0.8`` means 80% of the parameters are kept
    (the ``params`` objective's value; ``mlp_kept`` is its ``details["mlp_kept_fraction"]``).
    ``tasks`` is keyed by lower-case task name and holds the tasks a ``tasks>=`` SLO
    averages over (top-level tasks, not their subtasks as well). The search measures in
    stages (size first, then ppl/kl, then tasks), so an SLO whose measurement is missing
    gets ``violation() is None`` and the caller decides.
    """

    ppl_ratio: float | None = None
    kl: float | None = None
    params_kept: float | None = None
    mlp_kept: float | None = None
    tasks: Mapping[str, TaskScore] = field(default_factory=dict, hash=False)
    side: Side = "estimate"
    #: objective-backed metrics (``speed``), by metric name, in the objective's units
    extra: Mapping[str, float] = field(default_factory=dict, hash=False)
