"""Turn an Optuna study into the :class:`frontier.points.StudySummary` reports are made of."""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState

from frontier.points import StudySummary, TrialPoint
from frontier.search import storage as st
from frontier.search.find import choose, final_record
from frontier.search.trial import ATTR_PLAN, ATTR_SEARCH, ATTR_TIMING


def _float(x: Any) -> float | None:
    if isinstance(x, (int, float)) and math.isfinite(float(x)):
        return float(x)
    if x == "inf":
        return math.inf
    return None


def _tasks(rec: dict[str, Any]) -> dict[str, float]:
    return {
        name: float(d["acc"])
        for name, d in (rec.get("tasks") or {}).items()
        if isinstance(d, dict) and d.get("acc") is not None
    }


def _task_baselines(measurement: dict[str, Any] | None) -> dict[str, float]:
    details = (measurement or {}).get("details") or {}
    return {
        name: float(d["baseline"])
        for name, d in details.items()
        if isinstance(d, dict) and d.get("baseline") is not None
    }


def _point(
    rec: dict[str, Any],
    plan: dict[str, Any],
    number: int,
    *,
    feasible: bool,
    pareto: bool,
    chosen: bool,
    stage: str,
) -> TrialPoint:
    return TrialPoint(
        number=number,
        mlp_removed=1.0 - float(rec["mlp_kept"]),
        params_removed=1.0 - float(rec["params_kept"]),
        loss=_float(rec.get("nll")),
        ppl_ratio=_float(rec.get("ppl_ratio")),
        tasks=_tasks(rec),
        feasible=feasible,
        pareto=pareto,
        chosen=chosen,
        widths=tuple(plan["widths"]),
        full=tuple(plan["full"]),
        stage=stage,  # type: ignore[arg-type]
    )


def summarize(study: optuna.Study) -> StudySummary:
    spec = st.stored_spec(study)
    baseline = study.user_attrs.get(st.ATTR_BASELINE, {})
    report_base = study.user_attrs.get(st.ATTR_BASELINE + ":report", {})
    pareto = {t.number for t in study.best_trials}
    chosen_t = choose(study)
    chosen = chosen_t.number if chosen_t is not None else None
    points, final = [], []
    seconds = 0.0
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        rec, plan = t.user_attrs.get(ATTR_SEARCH), t.user_attrs.get(ATTR_PLAN)
        seconds += float(t.user_attrs.get(ATTR_TIMING, {}).get("total", 0.0))
        if not isinstance(rec, dict) or not isinstance(plan, dict):
            continue
        feasible = t.state == TrialState.COMPLETE and all(v <= 0 for v in t.constraints.values())
        points.append(
            _point(
                rec,
                plan,
                t.number,
                feasible=feasible,
                pareto=t.number in pareto,
                chosen=t.number == chosen,
                stage="search",
            )
        )
        fin = final_record(study, t)
        if fin is not None:
            final.append(
                _point(
                    fin,
                    plan,
                    t.number,
                    feasible=bool(fin.get("feasible")),
                    pareto=t.number in pareto,
                    chosen=t.number == chosen,
                    stage="final",
                )
            )
    cheap = baseline.get("search_ppl") or {}
    base_loss = _float((cheap.get("details") or {}).get("baseline_nll"))
    if base_loss is None:  # a KL search: fall back to the report text's unpruned loss
        base_loss = _float(((report_base.get("ppl") or {}).get("details") or {}).get("nll"))
    protocol: dict[str, Any] = dict(study.user_attrs.get(st.ATTR_PROTOCOL, {}))
    protocol["report"] = report_base.get("protocol", {})
    protocol["report_baseline_ppl"] = (report_base.get("ppl") or {}).get("raw")
    protocol["trials"] = {
        "total": len(trials),
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "screened": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "trial_seconds": round(seconds, 1),
    }
    return StudySummary(
        name=study.study_name,
        model=spec.model,
        baseline_loss=base_loss if base_loss is not None else math.nan,
        baseline_ppl=_float(cheap.get("raw")) or math.nan,
        baseline_tasks=_task_baselines(baseline.get("search_tasks")),
        baseline_tasks_final=_task_baselines(report_base.get("tasks")),
        slos=tuple(spec.slos),
        points=tuple(points),
        final=tuple(final),
        protocol=protocol,
    )
