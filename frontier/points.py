"""The stored numbers of a study: one value per trial, and the study around them.

Reports, fits and comparisons read only these values, so they can be rebuilt from a
saved ``summary.json`` without torch, Optuna or the model. Fractions, not percentages:
``mlp_removed=0.3`` means 30% of the MLP parameters are gone.
"""

from __future__ import annotations

import json
import math
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
    "mean_retention",
    "retention",
    "synthetic_summary",
    "trial_metrics",
    "violated",
]

SUMMARY_FORMAT = 1
Stage = Literal["search", "final"]
_STAGES: tuple[str, ...] = ("search", "final")


@dataclass(frozen=True)
class TrialPoint:
    """One trial's figures.

    ``stage`` says which figures these are: ``search`` (what the sampler saw) or ``final``
    (the Pareto set re-measured at report fidelity: held-out text, report documents).
    ``loss`` and ``ppl_ratio`` are None when the trial never got that far (staged
    evaluation stops at the first violated SLO); ``tasks`` then lacks the tasks not run.
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", {str(k).lower(): float(v) for k, v in self.tasks.items()})
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "full", tuple(int(f) for f in self.full))
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
        }

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

    def __post_init__(self) -> None:
        for name in ("baseline_tasks", "baseline_tasks_final"):
            object.__setattr__(
                self, name, {str(k).lower(): float(v) for k, v in getattr(self, name).items()}
            )
        object.__setattr__(self, "slos", tuple(self.slos))
        object.__setattr__(self, "points", tuple(self.points))
        object.__setattr__(self, "final", tuple(self.final))
        object.__setattr__(self, "protocol", dict(self.protocol))
        parse_slos(self.slos)  # a typo in a stored SLO is caught here, not in a report

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
        }

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
    """Accuracy / unpruned accuracy per task measured on both (0.9 = keeps 90%).

    Tasks without a positive baseline are left out: their retention is undefined.
    """
    out: dict[str, float] = {}
    for task, acc in point.tasks.items():
        r = TaskScore(acc, baseline_tasks.get(task)).retention
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


def trial_metrics(point: TrialPoint, baseline_tasks: Mapping[str, float]) -> TrialMetrics:
    """The point as the SLO language reads it, so feasibility can be re-checked."""
    return TrialMetrics(
        ppl_ratio=point.ppl_ratio,
        params_kept=1.0 - point.params_removed,
        mlp_kept=1.0 - point.mlp_removed,
        tasks={t: TaskScore(a, baseline_tasks.get(t)) for t, a in point.tasks.items()},
    )


def violated(
    point: TrialPoint, baseline_tasks: Mapping[str, float], slos: Iterable[SLO]
) -> list[str]:
    """The SLOs the point misses, as text; an SLO whose figure was not measured counts as
    missed, as in the search (a trial stopped before its tasks ran is not feasible)."""
    metrics = trial_metrics(point, baseline_tasks)
    out = []
    for slo in slos:
        v = slo.violation(metrics)
        if v is None or v > 0:
            out.append(str(slo) if v is not None else f"{slo} (not measured)")
    return out


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def synthetic_summary(
    *,
    name: str = "synthetic",
    model: str = "synthetic-12l",
    n_trials: int = 40,
    n_layers: int = 12,
    width: int = 1536,
    loss_law: tuple[float, float, float] = (2.6, 0.6, 2.4),
    tasks: Mapping[str, tuple[float, float]] | None = None,
    slos: tuple[str, ...] = ("ppl<1.6", "tasks>=90%"),
    noise: float = 0.004,
    seed: int = 0,
    final: bool = True,
) -> StudySummary:
    """A deterministic made-up study with known laws, for tests, docs and demos.

    Loss follows ``L0 + a·r + b·r²`` (``loss_law``) and each task ``A0 − c·r`` (``tasks``:
    name -> (A0, c)) in r = MLP fraction removed, plus Gaussian noise of sd ``noise``.
    Tasks are only "measured" on trials within 2x the ppl bound, as a staged search would;
    feasibility, the Pareto set (most removed vs lowest ppl ratio among feasible trials)
    and the chosen point (most removed on it) follow from the SLOs.
    """
    import numpy as np  # local: the data contract itself needs no numpy

    rng = np.random.default_rng(seed)
    laws = (
        dict(tasks)
        if tasks is not None
        else {"arc_easy": (0.70, 0.45), "hellaswag": (0.42, 0.20), "piqa": (0.72, 0.25)}
    )
    l0, a, b = loss_law
    full = (width,) * n_layers
    parsed: tuple[SLO, ...] = parse_slos(slos)
    ppl_cap = min((s.threshold for s in parsed if s.metric == "ppl"), default=math.inf)
    base_tasks = {t: a0 for t, (a0, _) in laws.items()}

    def measure(widths: tuple[int, ...], number: int, stage: Stage, shift: float) -> TrialPoint:
        r = 1.0 - sum(widths) / sum(full)
        loss = l0 + shift + a * r + b * r * r + float(rng.normal(0, noise))
        ratio = math.exp(loss - l0 - shift)
        measured = ratio <= 2 * ppl_cap or stage == "final"
        accs = (
            {t: a0 - c * r + float(rng.normal(0, noise)) for t, (a0, c) in laws.items()}
            if measured
            else {}
        )
        return TrialPoint(
            number=number,
            mlp_removed=r,
            params_removed=0.62 * r,  # MLPs are ~62% of a small Llama's parameters
            loss=loss,
            ppl_ratio=ratio,
            tasks=accs,
            feasible=False,
            pareto=False,
            chosen=False,
            widths=widths,
            full=full,
            stage=stage,
        )

    raw = []
    for i in range(n_trials):
        keep = rng.uniform(0.35, 1.0, n_layers) ** rng.uniform(0.3, 1.5)
        widths = tuple(max(8, int(np.rint(k * width / 8)) * 8) for k in keep)
        raw.append(measure(widths, i, "search", 0.0))

    def ok(p: TrialPoint) -> bool:
        return not violated(p, base_tasks, parsed)

    feasible = [p for p in raw if ok(p)]
    front = [
        p
        for p in feasible
        if not any(
            q.mlp_removed >= p.mlp_removed
            and (q.ppl_ratio or math.inf) <= (p.ppl_ratio or math.inf)
            and (q.mlp_removed, q.ppl_ratio) != (p.mlp_removed, p.ppl_ratio)
            for q in feasible
        )
    ]
    chosen = max(front, key=lambda p: p.mlp_removed).number if front else None
    front_ids = {p.number for p in front}
    points = tuple(
        replace(p, feasible=ok(p), pareto=p.number in front_ids, chosen=p.number == chosen)
        for p in raw
    )
    finals: tuple[TrialPoint, ...] = ()
    if final:
        # Held-out text: a slightly higher unpruned loss, the same law.
        finals = tuple(
            replace(
                f := measure(p.widths, p.number, "final", 0.05),
                feasible=ok(f),
                pareto=True,
                chosen=p.chosen,
            )
            for p in points
            if p.pareto
        )
    return StudySummary(
        name=name,
        model=model,
        baseline_loss=l0,
        baseline_ppl=math.exp(l0),
        baseline_tasks=base_tasks,
        slos=slos,
        points=points,
        final=finals,
        protocol={
            "search_text": {
                "source": "hf:wikitext:wikitext-2-raw-v1",
                "role": "search",
                "tokens": 32768,
            },
            "report_text": {
                "source": "hf:wikitext:wikitext-2-raw-v1",
                "role": "test",
                "tokens": 262144,
            },
            "context_length": 1024,
            "tasks": sorted(laws),
            "docs": {"search": 200, "report": 1000},
            "lm_eval_version": "0.4.9",
            "sampler": "TPESampler(seed=0, multivariate=True)",
            "trials": n_trials,
            "wall_time_s": 1234.5,
            "synthetic": True,
        },
    )
