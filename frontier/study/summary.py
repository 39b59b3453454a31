"""The numbers of a study: one value per trial and stage, the study around them, verdicts.

Reports, fits and comparisons read only these values, so they can be rebuilt from a
saved ``summary.json`` without torch, Optuna or the model. Fractions, not percentages:
``mlp_removed=0.3`` means 30% of the MLP parameters are gone.

The verdicts are defined here once, for every reader (CLI, report, compare, verify):

- a point's SLO *violations* are Optuna constraint values (SLO text -> value, > 0
  violated, None not measured): the trial's constraints for search-time figures, the
  final record's ``violations`` for held-out ones (see :mod:`frontier.study.schema`);
- :attr:`TrialPoint.missed`: the SLOs a point misses, an unmeasured one included;
- :func:`nearest`: the trial closest to meeting every SLO (see there);
- a trial's *figures to believe* are its held-out (final) ones when it has them, else
  its search-time ones (:meth:`StudySummary.figures_for`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from frontier.errors import FrontierError
from frontier.study.slo import SLO, TaskScore, TrialMetrics, parse_slos

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
Stage = Literal["search", "final"]
_STAGES: tuple[str, ...] = ("search", "final")


@dataclass(frozen=True)
class TrialPoint:
    """One trial's figures.

    ``stage`` says which figures these are: ``search`` (what the sampler saw) or ``final``
    (the Pareto set re-measured at report fidelity: held-out text, report documents).
    ``loss`` and ``ppl_ratio`` are None when not measured (a KL search has no perplexity);
    ``tasks`` lacks the tasks not run (staged evaluation skips them for a trial that
    misses a cheap SLO or is dominated on size and the cheap signal).
    ``violations`` maps each SLO (canonical text) to its constraint value on these
    figures: > 0 violated, None not measured. ``feasible`` is the study's verdict: for
    search figures Optuna's (a complete trial with no violated constraint), for final
    ones the final record's (every SLO measured and met).
    """

    number: int
    mlp_removed: float
    params_removed: float
    loss: float | None
    ppl_ratio: float | None
    tasks: Mapping[str, float] = field(hash=False)  # a dict: hash the rest
    feasible: bool
    pareto: bool
    chosen: bool
    widths: tuple[int, ...]
    full: tuple[int, ...]
    stage: Stage
    violations: Mapping[str, float | None] = field(default_factory=dict, hash=False)
    # retention as measured with the trial, paired on the documents it used, and its
    # interval; records from before paired measurement have neither
    retained: Mapping[str, float] = field(default_factory=dict, hash=False)
    retained_ci: Mapping[str, tuple[float, float]] = field(default_factory=dict, hash=False)
    # final figures on fewer held-out tokens, measured only to spread the front for the
    # fits and the report: never a candidate for the chosen point
    spread: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", {str(k).lower(): float(v) for k, v in self.tasks.items()})
        object.__setattr__(
            self, "retained", {str(k).lower(): float(v) for k, v in self.retained.items()}
        )
        object.__setattr__(
            self,
            "retained_ci",
            {str(k).lower(): (float(v[0]), float(v[1])) for k, v in self.retained_ci.items()},
        )
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "full", tuple(int(f) for f in self.full))
        object.__setattr__(
            self, "violations", {str(k): _opt_float(v) for k, v in self.violations.items()}
        )
        if not 0.0 <= self.mlp_removed < 1.0:
            raise FrontierError(
                f"trial {self.number}: mlp_removed must be a fraction in [0, 1), "
                f"got {self.mlp_removed}"
            )
        if self.stage not in _STAGES:
            raise FrontierError(f"trial {self.number}: stage must be search or final")
        if len(self.widths) != len(self.full):
            raise FrontierError(
                f"trial {self.number}: {len(self.widths)} widths for {len(self.full)} layers"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "mlp_removed": self.mlp_removed,
            "params_removed": self.params_removed,
            "loss": self.loss,
            "ppl_ratio": self.ppl_ratio,
            "tasks": dict(sorted(self.tasks.items())),
            "feasible": self.feasible,
            "pareto": self.pareto,
            "chosen": self.chosen,
            "widths": list(self.widths),
            "full": list(self.full),
            "stage": self.stage,
            "violations": dict(self.violations),
            "retained": dict(sorted(self.retained.items())),
            "retained_ci": {k: list(v) for k, v in sorted(self.retained_ci.items())},
            "spread": self.spread,
        }

    # -- verdicts -----------------------------------------------------------------------
    @property
    def missed(self) -> tuple[str, ...]:
        """The SLOs these figures miss, in SLO order; an SLO not measured counts as missed
        (``"tasks>=90% (not measured)"``), as in the search, where such a trial is never
        feasible."""
        return tuple(
            slo if v is not None else f"{slo} (not measured)"
            for slo, v in self.violations.items()
            if v is None or v > 0
        )

    @property
    def worst_violation(self) -> float | None:
        """The largest violation over the measured SLOs (0 when all are met), or None
        when no SLO was measured."""
        known = [max(v, 0.0) for v in self.violations.values() if v is not None]
        return max(known) if known else None

    @property
    def total_violation(self) -> float:
        """The sum of violations over the measured SLOs (met ones count 0)."""
        return sum(max(v, 0.0) for v in self.violations.values() if v is not None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialPoint:
        return cls(
            number=int(data["number"]),
            mlp_removed=float(data["mlp_removed"]),
            params_removed=float(data["params_removed"]),
            loss=_opt_float(data.get("loss")),
            ppl_ratio=_opt_float(data.get("ppl_ratio")),
            tasks={str(k): float(v) for k, v in data.get("tasks", {}).items()},
            feasible=bool(data["feasible"]),
            pareto=bool(data["pareto"]),
            chosen=bool(data["chosen"]),
            widths=tuple(data["widths"]),
            full=tuple(data["full"]),
            stage=cast(Stage, data["stage"]),
            violations=dict(data.get("violations") or {}),
            retained=dict(data.get("retained") or {}),
            retained_ci={k: tuple(v) for k, v in (data.get("retained_ci") or {}).items()},
            spread=bool(data.get("spread", False)),
        )


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


def retention(point: TrialPoint, baseline_tasks: Mapping[str, float]) -> dict[str, float]:
    """Accuracy / unpruned accuracy per task measured on both (0.9 = keeps 90%): the
    retention recorded with the trial where it has one (paired on the documents it used,
    which adaptive documents make differ from trial to trial), else acc / ``baseline_tasks``.

    Tasks without a positive baseline are left out: their retention is undefined.
    """
    out: dict[str, float] = {}
    for task, acc in point.tasks.items():
        r = TaskScore(acc, baseline_tasks.get(task), paired=point.retained.get(task)).retention
        if r is not None:
            out[task] = r
    return out


def mean_retention(point: TrialPoint, baseline_tasks: Mapping[str, float]) -> float | None:
    """Mean retention over the point's tasks, None if none has one.

    Like the ``tasks>=`` SLO, a point missing a baseline task's accuracy gets None rather
    than a mean over fewer tasks, so every mean is over the same tasks.
    """
    ret = retention(point, baseline_tasks)
    wanted = {t for t, b in baseline_tasks.items() if b > 0}
    if not ret or not wanted <= set(ret):
        return None
    return sum(ret[t] for t in wanted) / len(wanted)


def point_metrics(point: TrialPoint, baseline_tasks: Mapping[str, float]) -> TrialMetrics:
    """The point's figures as the SLO language reads them, so SLOs can be re-checked."""
    return TrialMetrics(
        ppl_ratio=point.ppl_ratio,
        params_kept=1.0 - point.params_removed,
        mlp_kept=1.0 - point.mlp_removed,
        tasks={
            t: TaskScore(
                a,
                baseline_tasks.get(t),
                retention_ci=point.retained_ci.get(t),
                paired=point.retained.get(t),
            )
            for t, a in point.tasks.items()
        },
    )


def feasible(violations: Mapping[str, float | None]) -> bool:
    """Every SLO in ``violations`` measured and met (constraint value <= 0).

    The one verdict on a set of figures: the search's on a complete trial's constraints
    (which hold every SLO once it is complete), the final one on held-out figures.
    """
    return all(v is not None and v <= 0 for v in violations.values())


def slo_violations(
    point: TrialPoint, baseline_tasks: Mapping[str, float], slos: Iterable[SLO]
) -> dict[str, float | None]:
    """Each SLO's constraint value on the point's figures (None: not measured).

    For points whose verdicts were not recorded; a study's own points carry the values
    the search recorded (KL, which a point has no figure for, among them).
    """
    metrics = point_metrics(point, baseline_tasks)
    return {str(slo): slo.violation(metrics) for slo in slos}


def ranked_by_nearness(points: Iterable[TrialPoint]) -> list[TrialPoint]:
    """Points with at least one measured SLO, nearest to meeting every SLO first.

    The order: the smallest largest violation (constraint values are scaled by their
    thresholds, so SLOs in different units compare), ties to the smaller summed
    violation, then to fewer parameters kept, then to the lower trial number. SLOs not
    measured are left out of both sums (a value that does not exist is not guessed).
    """
    measured = [p for p in points if p.worst_violation is not None]
    return sorted(
        measured,
        key=lambda p: (p.worst_violation, p.total_violation, -p.params_removed, p.number),
    )


def nearest(points: Iterable[TrialPoint]) -> TrialPoint | None:
    """The point nearest to meeting every SLO (see :func:`ranked_by_nearness`), or None.

    Pass each trial's figures to believe (:meth:`StudySummary.believed`): the CLI, the
    report and the runner all do, so they name the same trial.
    """
    ranked = ranked_by_nearness(points)
    return ranked[0] if ranked else None


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)
