"""Reading an Optuna study: its trials, the chosen and nearest trial, its summary.

The one place where stored attributes (:mod:`frontier.study.schema`) become typed values.
Every reader goes through it: ``frontier pareto``/``show``/``report``/``fit``/``compare``,
export and verify, and the runner itself when it chooses. Imports Optuna, never torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import optuna
from optuna.trial import FrozenTrial, TrialState

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.study.point import Stage, TrialPoint, as_interval
from frontier.study.schema import (
    ATTR_BASELINE,
    ATTR_BASELINE_REPORT,
    ATTR_EARLY_STOP,
    ATTR_FAILED,
    ATTR_PLAN,
    ATTR_PROTOCOL,
    ATTR_SCREENED,
    ATTR_SEARCH,
    ATTR_TIMING,
    ATTR_UNIFORM,
    ATTR_WARM,
    FinalRecord,
    SearchRecord,
    final_key,
)
from frontier.study.slo import parse_slos
from frontier.study.spec import stored_spec
from frontier.study.summary import StudySummary
from frontier.study.verdicts import feasible, nearest

__all__ = [
    "StudyTrial",
    "choose",
    "chosen_number",
    "chosen_trial",
    "final_record",
    "nearest_trial",
    "pareto",
    "read_summary",
    "read_trial",
    "read_trials",
    "show",
]


@dataclass(frozen=True)
class StudyTrial:
    """One trial as the readers see it: what it is, its records, its figures per stage.

    ``search`` and ``final`` are the stored records (``final`` is None until the trial
    was re-measured on held-out data); ``search_point`` and ``final_point`` the same
    figures as :class:`~frontier.study.point.TrialPoint` values, with their verdicts.
    """

    number: int
    state: str  # complete, pruned (screened), fail, running, waiting
    plan: Plan | None
    search: SearchRecord
    final: FinalRecord | None
    pareto: bool
    chosen: bool
    warm_start: str | None
    note: str | None
    timing: Mapping[str, float] = field(default_factory=dict)
    search_point: TrialPoint | None = None
    final_point: TrialPoint | None = None

    @property
    def figures(self) -> TrialPoint | None:
        """The figures to believe: held-out when measured, else search-time."""
        return self.final_point or self.search_point

    @property
    def feasible(self) -> bool:
        """Feasible on the search-time figures (Optuna's verdict)."""
        return self.search_point is not None and self.search_point.feasible

    @property
    def mlp_removed(self) -> float | None:
        return None if self.search_point is None else self.search_point.mlp_removed

    @property
    def params_removed(self) -> float | None:
        return None if self.search_point is None else self.search_point.params_removed

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.number,
            "state": self.state,
            "feasible": self.feasible,
            "pareto": self.pareto,
            "chosen": self.chosen,
            "mlp_removed": self.mlp_removed,
            "params_removed": self.params_removed,
            "search": self.search,
            "final": self.final,
            "widths": list(self.plan.widths) if self.plan else None,
            "warm_start": self.warm_start,
            "note": self.note,
            "timing": dict(self.timing),
        }


# -- the runner's verdicts, read back -------------------------------------------------------
def final_record(study: optuna.Study, trial: FrozenTrial | int) -> FinalRecord | None:
    """A trial's final (held-out) figures, or None if it was never re-measured."""
    return _final(study.user_attrs, trial if isinstance(trial, int) else trial.number)


def _final(study_attrs: Mapping[str, Any], number: int) -> FinalRecord | None:
    rec = study_attrs.get(final_key(number))
    return cast(FinalRecord, rec) if isinstance(rec, dict) else None


def choose(study: optuna.Study) -> FrozenTrial | None:
    """The trial with the fewest parameters that met every SLO at search time and again on
    its held-out re-measurement; ties to the lower held-out ppl ratio, then the lower number.

    Only trials re-measured on held-out data and feasible there can be chosen, so a plan
    that met the SLOs only on the search-time sample never is; nor one re-measured only
    to spread the front (a ``spread`` record, on fewer tokens). A trial outside the
    search-time Pareto set can be chosen: one of the same size with a worse search-time
    figure that passes held out where the Pareto one does not.
    """
    best = []
    attrs = study.user_attrs  # one read: a database query on RDB storages
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        final = _final(attrs, t.number)
        if final is None or not final.get("feasible", False) or final.get("spread"):
            continue
        if t.values is None or not feasible(t.constraints):
            continue
        ppl = final.get("ppl_ratio", t.values[1])
        ppl = math.inf if not isinstance(ppl, (int, float)) else ppl
        best.append((t.values[0], ppl, t.number, t))
    return min(best, key=lambda x: x[:3])[3] if best else None


# -- trials ------------------------------------------------------------------------------
class _Reader:
    """What reading every trial of one study needs once: SLOs, Pareto set, chosen trial."""

    def __init__(self, study: optuna.Study) -> None:
        self.attrs = study.user_attrs  # read once: a database query on RDB storages
        self.slos = tuple(str(s) for s in parse_slos(stored_spec(study).slos))
        self.pareto = {t.number for t in study.best_trials}
        chosen = choose(study)
        self.chosen = chosen.number if chosen is not None else None

    def trial(self, t: FrozenTrial) -> StudyTrial:
        attrs = t.user_attrs
        plan_d = attrs.get(ATTR_PLAN)
        plan = Plan.from_dict(plan_d) if isinstance(plan_d, dict) else None
        search = cast(SearchRecord, dict(attrs.get(ATTR_SEARCH) or {}))
        final = _final(self.attrs, t.number)
        pareto, chosen = t.number in self.pareto, t.number == self.chosen
        search_point = final_point = None
        if plan is not None and "mlp_kept" in search:
            search_point = _point(
                search,
                plan,
                stage="search",
                violations={s: t.constraints.get(s) for s in self.slos},
                # Optuna's own verdict: a complete trial with no violated constraint
                feasible=t.state == TrialState.COMPLETE and feasible(t.constraints),
                number=t.number,
                pareto=pareto,
                chosen=chosen,
            )
        if plan is not None and final is not None:
            final_point = _point(
                final,
                plan,
                stage="final",
                violations=dict(final.get("violations") or {}),
                feasible=bool(final.get("feasible")),  # as the runner judged it
                number=t.number,
                pareto=pareto,
                chosen=chosen,
            )
            if final.get("spread"):
                final_point = dataclasses.replace(final_point, spread=True)
        return StudyTrial(
            number=t.number,
            state=t.state.name.lower(),
            plan=plan,
            search=search,
            final=final,
            pareto=pareto,
            chosen=chosen,
            warm_start=attrs.get(ATTR_WARM),
            note=attrs.get(ATTR_SCREENED) or attrs.get(ATTR_FAILED),
            timing=dict(attrs.get(ATTR_TIMING) or {}),
            search_point=search_point,
            final_point=final_point,
        )


def _float(x: Any) -> float | None:
    if isinstance(x, (int, float)) and math.isfinite(float(x)):
        return float(x)
    if x == "inf":
        return math.inf
    return None


def _point(
    rec: SearchRecord,
    plan: Plan,
    *,
    number: int,
    stage: Stage,
    violations: dict[str, float | None],
    feasible: bool,
    pareto: bool,
    chosen: bool,
) -> TrialPoint:
    return TrialPoint(
        number=number,
        mlp_removed=1.0 - float(rec["mlp_kept"]),
        params_removed=1.0 - float(rec["params_kept"]),
        loss=_float(rec.get("nll")),
        ppl_ratio=_float(rec.get("ppl_ratio")),
        tasks={
            name: float(d["acc"])
            for name, d in (rec.get("tasks") or {}).items()
            if isinstance(d, dict) and d.get("acc") is not None
        },
        retained={
            name: float(r)
            for name, d in (rec.get("tasks") or {}).items()
            if isinstance(d, dict) and "ci" in d and (r := d.get("retained")) is not None
        },
        retained_ci={
            name: (float(d["ci"][0]), float(d["ci"][1]))
            for name, d in (rec.get("tasks") or {}).items()
            if isinstance(d, dict) and "ci" in d
        },
        feasible=feasible,
        pareto=pareto,
        chosen=chosen,
        widths=plan.widths,
        full=plan.full,
        stage=stage,
        violations=violations,
        ppl_ci=as_interval(rec.get("ppl_ci")),
    )


def read_trials(study: optuna.Study, *, pareto_only: bool = False) -> list[StudyTrial]:
    """The study's trials, or only its search-time Pareto set."""
    reader = _Reader(study)
    return [
        reader.trial(t)
        for t in study.get_trials(deepcopy=False)
        if not pareto_only or t.number in reader.pareto
    ]


def read_trial(study: optuna.Study, number: int) -> StudyTrial:
    """Trial ``number``; a number the study does not have is a one-line error."""
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise FrontierError(
            f"study {study.study_name!r} has no trial {number} (trials 0..{len(trials) - 1})"
        )
    return _Reader(study).trial(trials[number])


def chosen_trial(study: optuna.Study) -> StudyTrial | None:
    """The chosen trial (see :func:`choose`), or None when no trial meets every SLO."""
    t = choose(study)
    return None if t is None else _Reader(study).trial(t)


def nearest_trial(
    study: optuna.Study, trials: Sequence[StudyTrial] | None = None
) -> StudyTrial | None:
    """The trial nearest to meeting every SLO, on its figures to believe (``trials``: the
    study's, where the caller has read them already).

    The definition is :func:`frontier.study.verdicts.nearest`'s, which the report uses too.
    """
    trials = read_trials(study) if trials is None else trials
    by_number = {t.number: t for t in trials}
    point = nearest(t.figures for t in trials if t.figures is not None)
    return None if point is None else by_number[point.number]


def pareto(study: optuna.Study, *, all_trials: bool = False) -> list[StudyTrial]:
    """``frontier pareto``: the search-time Pareto set (``all_trials``: every trial)."""
    return read_trials(study, pareto_only=not all_trials)


def show(study: optuna.Study, trial: int | None = None) -> StudyTrial:
    """``frontier show``: trial ``trial``, by default the chosen trial."""
    return read_trial(study, chosen_number(study) if trial is None else trial)


def chosen_number(study: optuna.Study) -> int:
    """The chosen trial's number; an error naming the nearest trial where none is chosen."""
    t = choose(study)
    if t is not None:
        return t.number
    near = nearest_trial(study)
    raise FrontierError(
        f"study {study.study_name!r} has no chosen trial (none meets every SLO on held-out "
        "figures)"
        + (f"; the nearest is trial {near.number}" if near is not None else "")
        + "; pass a trial number after the study's name"
    )


# -- the whole study -------------------------------------------------------------------------
def _task_baselines(measurement: Mapping[str, Any] | None) -> dict[str, float]:
    details = (measurement or {}).get("details") or {}
    return {
        name: float(d["baseline"])
        for name, d in details.items()
        if isinstance(d, dict) and d.get("baseline") is not None
    }


def read_summary(study: optuna.Study) -> StudySummary:
    """The study as the :class:`StudySummary` its report, fits and comparisons are made of."""
    spec = stored_spec(study)
    baseline = study.user_attrs.get(ATTR_BASELINE, {})
    report_base = study.user_attrs.get(ATTR_BASELINE_REPORT, {})
    trials = read_trials(study)
    raw = study.get_trials(deepcopy=False)
    seconds = sum(float(t.timing.get("total", 0.0)) for t in trials)
    cheap = baseline.get("search_ppl") or {}
    base_loss = _float((cheap.get("details") or {}).get("baseline_nll"))
    if base_loss is None:  # a KL search: fall back to the report text's unpruned loss
        base_loss = _float(((report_base.get("ppl") or {}).get("details") or {}).get("nll"))
    protocol: dict[str, Any] = dict(study.user_attrs.get(ATTR_PROTOCOL, {}))
    protocol["report"] = report_base.get("protocol", {})
    protocol["report_baseline_ppl"] = (report_base.get("ppl") or {}).get("raw")
    protocol["trials"] = {
        "total": len(raw),
        "complete": sum(t.state == TrialState.COMPLETE for t in raw),
        "screened": sum(t.state == TrialState.PRUNED for t in raw),
        "failed": sum(t.state == TrialState.FAIL for t in raw),
        "trial_seconds": round(seconds, 1),
    }
    stopped = study.user_attrs.get(ATTR_EARLY_STOP)
    if isinstance(stopped, dict):  # where the search stopped early (frontier.study.early_stop)
        protocol["stopped_early"] = stopped
    return StudySummary(
        name=study.study_name,
        model=spec.model,
        baseline_loss=base_loss if base_loss is not None else math.nan,
        baseline_ppl=_float(cheap.get("raw")) or math.nan,
        baseline_tasks=_task_baselines(baseline.get("search_tasks")),
        baseline_tasks_final=_task_baselines(report_base.get("tasks")),
        slos=tuple(spec.slos),
        points=tuple(t.search_point for t in trials if t.search_point is not None),
        final=tuple(
            t.final_point
            for t in trials
            if t.final_point is not None and t.search_point is not None
        ),
        protocol=protocol,
        uniform_limit=dict(study.user_attrs.get(ATTR_UNIFORM) or {}),
    )
