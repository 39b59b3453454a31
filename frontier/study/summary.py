"""The numbers of a study: one value per trial and stage, the study around them, verdicts.

Reports, fits and comparisons read only these values, so they can be rebuilt from a
saved ``summary.json`` without torch, Optuna or the model. Fractions, not percentages:
``mlp_removed=0.3`` means 30% of the MLP parameters are gone.

One trial's figures are a :class:`~frontier.study.point.TrialPoint`; the verdicts on them
(missed SLOs, feasibility, the nearest trial, retention) are defined once, in
:mod:`frontier.study.verdicts`, and re-exported here. A trial's *figures to believe* are
its held-out (final) ones when it has them, else its search-time ones
(:meth:`StudySummary.figures_for`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from frontier.errors import FrontierError
from frontier.study.point import Stage, TrialPoint
from frontier.study.slo import SLO, parse_slos
from frontier.study.verdicts import (
    feasible,
    mean_retention,
    nearest,
    point_metrics,
    ranked_by_nearness,
    retention,
    slo_violations,
)

__all__ = [
    "SUMMARY_FORMAT",
    "Stage",
    "StudySummary",
    "TrialPoint",
    "feasible",
    "mean_retention",
    "nearest",
    "point_metrics",
    "ranked_by_nearness",
    "retention",
    "slo_violations",
]

SUMMARY_FORMAT = 1


@dataclass(frozen=True)
class StudySummary:
    """A finished study: its baseline, SLOs, every trial's search figures, the final figures.

    ``baseline_loss`` is on the same text as the search points' ``loss``; ``protocol``
    holds what a reader needs to reproduce the numbers (texts, token counts, context,
    tasks, documents, lm-eval version, sampler, trials, wall time) as plain JSON values.
    """

    name: str
    model: str
    baseline_loss: float
    baseline_ppl: float
    baseline_tasks: Mapping[str, float] = field(hash=False)
    slos: tuple[str, ...]
    points: tuple[TrialPoint, ...]
    final: tuple[TrialPoint, ...] = ()
    protocol: Mapping[str, Any] = field(default_factory=dict, hash=False)
    # Unpruned accuracy on the *report* documents, which the final points were measured
    # on; retention of a final point is relative to these, never to the search baseline.
    baseline_tasks_final: Mapping[str, float] = field(default_factory=dict, hash=False)
    # The bisected uniform plan at the SLOs (``frontier:uniform_limit``): ``keep``,
    # ``trial``, ``tol`` and the bisection ``steps``; empty when the study has none.
    uniform_limit: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("baseline_tasks", "baseline_tasks_final"):
            object.__setattr__(
                self, name, {str(k).lower(): float(v) for k, v in getattr(self, name).items()}
            )
        object.__setattr__(self, "slos", tuple(self.slos))
        object.__setattr__(self, "protocol", dict(self.protocol))
        slos = parse_slos(self.slos)  # a typo in a stored SLO is caught here, not in a report
        # Points without recorded verdicts (a summary written before they were stored, a
        # hand-made one) get them from their figures, with the same SLO arithmetic.
        for name in ("points", "final"):
            points = tuple(
                p
                if p.violations or not slos
                else replace(p, violations=slo_violations(p, self.baselines_for(p), slos))
                for p in getattr(self, name)
            )
            object.__setattr__(self, name, points)

    # -- views --------------------------------------------------------------------------
    def baselines_for(self, point: TrialPoint) -> Mapping[str, float]:
        """The unpruned task accuracies on the documents ``point`` was measured on."""
        if point.stage == "final" and self.baseline_tasks_final:
            return self.baseline_tasks_final
        return self.baseline_tasks

    def parsed_slos(self) -> tuple[SLO, ...]:
        return parse_slos(self.slos)

    @property
    def chosen(self) -> TrialPoint | None:
        """The chosen point, at report fidelity when it was re-measured."""
        for pts in (self.final, self.points):
            for p in pts:
                if p.chosen:
                    return p
        return None

    @property
    def pareto(self) -> tuple[TrialPoint, ...]:
        """The search-time Pareto set, by fraction removed."""
        return tuple(sorted((p for p in self.points if p.pareto), key=lambda p: p.mlp_removed))

    def final_for(self, number: int) -> TrialPoint | None:
        return next((p for p in self.final if p.number == number), None)

    def search_for(self, number: int) -> TrialPoint | None:
        return next((p for p in self.points if p.number == number), None)

    def figures_for(self, number: int) -> TrialPoint | None:
        """Trial ``number``'s figures to believe: held-out when measured, else search-time."""
        return self.final_for(number) or self.search_for(number)

    def believed(self) -> tuple[TrialPoint, ...]:
        """Every trial's figures to believe, by trial number."""
        numbers = sorted({p.number for p in (*self.points, *self.final)})
        return tuple(p for n in numbers if (p := self.figures_for(n)) is not None)

    @property
    def nearest(self) -> TrialPoint | None:
        """The trial closest to meeting every SLO (:func:`nearest`), on believed figures."""
        return nearest(self.believed())

    @property
    def uniform(self) -> TrialPoint | None:
        """The bisected uniform plan's figures (held-out when measured), or None."""
        number = self.uniform_limit.get("trial")
        return self.figures_for(int(number)) if isinstance(number, int) else None

    def gain_over_uniform(self, point: TrialPoint | None = None) -> float | None:
        """MLP fraction removed at ``point`` (default: the chosen one) over the bisected
        uniform plan's, on the figures to believe for each; None when either is missing
        or the uniform plan removes nothing."""
        point = point or self.chosen
        uniform = self.uniform
        if point is None or uniform is None or uniform.mlp_removed <= 0:
            return None
        return point.mlp_removed / uniform.mlp_removed

    @property
    def task_names(self) -> tuple[str, ...]:
        """Every task measured anywhere (baseline first, then any extra), sorted."""
        names = set(self.baseline_tasks)
        for p in (*self.points, *self.final):
            names.update(p.tasks)
        return tuple(sorted(names))

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SUMMARY_FORMAT,
            "name": self.name,
            "model": self.model,
            "baseline_loss": self.baseline_loss,
            "baseline_ppl": self.baseline_ppl,
            "baseline_tasks": dict(sorted(self.baseline_tasks.items())),
            "slos": list(self.slos),
            "points": [p.to_dict() for p in self.points],
            "final": [p.to_dict() for p in self.final],
            "protocol": dict(self.protocol),
            "baseline_tasks_final": dict(sorted(self.baseline_tasks_final.items())),
            "uniform_limit": self._uniform_dict(),
        }

    def _uniform_dict(self) -> dict[str, Any]:
        if not self.uniform_limit:
            return {}
        out = dict(self.uniform_limit)
        number = out.get("trial")
        search = self.search_for(number) if isinstance(number, int) else None
        final = self.final_for(number) if isinstance(number, int) else None
        for key, p in (("search", search), ("heldout", final)):
            out[key] = (
                None
                if p is None
                else {
                    "mlp_removed": p.mlp_removed,
                    "ppl_ratio": p.ppl_ratio,
                    "feasible": p.feasible,
                }
            )
        out["gain_of_chosen"] = self.gain_over_uniform()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudySummary:
        if data.get("format", SUMMARY_FORMAT) != SUMMARY_FORMAT:
            raise FrontierError(f"unsupported summary format {data.get('format')!r}")
        try:
            return cls(
                name=str(data["name"]),
                model=str(data["model"]),
                baseline_loss=float(data["baseline_loss"]),
                baseline_ppl=float(data["baseline_ppl"]),
                baseline_tasks={str(k): float(v) for k, v in data["baseline_tasks"].items()},
                slos=tuple(str(s) for s in data["slos"]),
                points=tuple(TrialPoint.from_dict(p) for p in data["points"]),
                final=tuple(TrialPoint.from_dict(p) for p in data.get("final", [])),
                baseline_tasks_final={
                    str(k): float(v) for k, v in data.get("baseline_tasks_final", {}).items()
                },
                protocol=dict(data.get("protocol", {})),
                uniform_limit={
                    k: v
                    for k, v in (data.get("uniform_limit") or {}).items()
                    if k in ("keep", "trial", "tol", "steps", "mlp_kept")
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FrontierError(f"malformed study summary: {type(exc).__name__}: {exc}") from None

    def to_json(self) -> str:
        # NaN (a broken trial's loss) is kept: Python's json writes and reads it back.
        # Keys keep their order: the protocol's order is how its author meant it to read.
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> StudySummary:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FrontierError(f"study summary is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise FrontierError("study summary JSON must be an object")
        return cls.from_dict(data)
