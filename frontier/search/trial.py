"""One trial: apply the plan, measure cheaply, measure tasks only where it can matter.

Staging: every trial gets the cheap signal (perplexity or KL on a small token set) and
its size. Task accuracy is measured only for trials that meet every cheap SLO and are
not dominated on (size, cheap signal) by a feasible trial already measured; the others
are recorded as PRUNED ("screened") with their cheap figures and constraint values, so
they never enter the Pareto set and no accuracy is invented for them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from frontier.pruning.plan import Plan
from frontier.search.applied import applied_record, operator_alphas
from frontier.search.context import SearchContext
from frontier.search.families import LEVELS
from frontier.study.measured import Side, TaskScore, TrialMetrics
from frontier.study.schema import (
    ATTR_APPLIED,
    ATTR_FAILED,
    ATTR_FAMILY,
    ATTR_PLAN,
    ATTR_SCREENED,
    ATTR_SEARCH,
    ATTR_TIMING,
    ATTR_WARM,
    SearchRecord,
    TaskRecord,
    TimingRecord,
)
from frontier.study.verdicts import feasible
from objectives import Measurement


class TrialFailed(Exception):
    """The pruned model produced NaN, or the GPU ran out of memory: recorded as a failed
    trial with its reason; the search goes on."""


def measured_metrics(
    size: Measurement,
    cheap: Measurement,
    tasks: Measurement | None,
    side: Side = "estimate",
    extra: Mapping[str, Measurement] | None = None,
) -> TrialMetrics:
    """The objectives' measurements of one pruned model, as the SLO language reads them
    (task floors on ``side`` of their intervals; ``extra``: objective-backed metrics by
    name)."""
    task_scores: dict[str, TaskScore] = {}
    if tasks is not None:
        for name, d in tasks.details.get("tasks", tasks.details).items():
            if isinstance(d, dict) and "acc" in d:
                task_scores[name] = TaskScore.from_details(d)
    return TrialMetrics(
        ppl_ratio=cheap.value if cheap.name == "ppl" else None,
        kl=cheap.value if cheap.name == "kl" else None,
        params_kept=size.value,
        mlp_kept=float(size.details["mlp_kept_fraction"]),
        tasks=task_scores,
        side=side,
        extra={name: m.value for name, m in (extra or {}).items()},
    )


def record(
    size: Measurement,
    cheap: Measurement,
    tasks: Measurement | None,
    extra: Mapping[str, Measurement] | None = None,
) -> SearchRecord:
    """The JSON stored with a trial (search-time or, extended, final figures)."""
    out = SearchRecord(
        params_kept=size.value,
        mlp_kept=float(size.details["mlp_kept_fraction"]),
        total_params=size.raw,
    )
    if cheap.name == "ppl":
        out["ppl_ratio"] = _finite(cheap.value)
        out["ppl"] = _finite(cheap.raw)
        out["nll"] = _finite(cheap.details.get("nll"))
        if "interval" in cheap.details:  # paired over the text's windows
            out["ppl_ci"] = [_finite(float(x)) for x in cheap.details["interval"]]
            out["ppl_confidence"] = float(cheap.details["confidence"])
    else:
        out["kl"] = _finite(cheap.value)
    if tasks is not None:
        task_records: dict[str, TaskRecord] = tasks.details.get("tasks", tasks.details)
        out["tasks"] = task_records
        out["mean_retained"] = _finite(tasks.value)
        out["mean_acc"] = _finite(tasks.raw)
    if extra:
        out["extra"] = {name: _finite(m.value) for name, m in extra.items()}
    return out


def finite(x: Any) -> Any:
    """JSON-safe: NaN becomes None, infinities strings."""
    return _finite(x)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def plan_for(ctx: SearchContext, trial: optuna.Trial) -> Plan:
    plan = ctx.space.suggest(trial)  # records the (possibly enqueued) parameters
    exact = trial.user_attrs.get(ATTR_PLAN)
    if trial.user_attrs.get(ATTR_WARM) and isinstance(exact, dict):
        return Plan.from_dict(exact)
    if ATTR_FAMILY not in trial.user_attrs:  # the sampler's own: its level switches
        trial.set_user_attr(ATTR_FAMILY, LEVELS)
    return plan


def _dominated(study: optuna.Study, params: float, cheap: float) -> bool:
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.values is None or not feasible(t.constraints):
            continue
        p, c = t.values[0], t.values[1]
        if p <= params and c <= cheap and (p < params or c < cheap):
            return True
    return False


def run_trial(ctx: SearchContext, trial: optuna.Trial) -> tuple[float, ...]:
    """Measure one trial. A GPU that runs out of memory fails this trial alone, with its
    reason, and frees what it can (the plan is restored either way); the study goes on."""
    import torch

    try:
        return _run_trial(ctx, trial)
    except torch.OutOfMemoryError as exc:
        reason = out_of_memory(exc, ctx.lm.device)
        trial.set_user_attr(ATTR_FAILED, reason)
        raise TrialFailed(f"trial {trial.number}: {reason}") from None


def out_of_memory(exc: BaseException, device: Any) -> str:
    """Free the allocator's cache and say what ran out (the error's first line)."""
    import gc

    import torch

    gc.collect()
    if getattr(device, "type", str(device)).startswith("cuda"):
        torch.cuda.empty_cache()
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"out of memory on {device}" + (f" ({first})" if first else "")


def _run_trial(ctx: SearchContext, trial: optuna.Trial) -> tuple[float, ...]:
    start = time.perf_counter()
    plan = plan_for(ctx, trial)
    trial.set_user_attr(ATTR_PLAN, plan.to_dict())
    forward = 0.0
    tasks_m: Measurement | None = None
    screened: str | None = None
    t = time.perf_counter()
    with ctx.pruner.pruned(plan) as selection:
        surgery = time.perf_counter() - t
        # what an export of this trial must rebuild (checked there)
        applied = applied_record(selection, operator_alphas(ctx.pruner))
        trial.set_user_attr(ATTR_APPLIED, dict(applied))
        size = ctx.size.evaluate(ctx.lm)
        t = time.perf_counter()
        cheap = ctx.cheap.evaluate(ctx.lm)
        forward += time.perf_counter() - t
        if math.isnan(cheap.value):
            trial.set_user_attr(ATTR_FAILED, f"{cheap.name} is NaN")
            raise TrialFailed(f"trial {trial.number}: {cheap.name} is NaN")
        # what the objective-backed SLO metrics read (speed), beside the cheap signal
        extra = {name: obj.evaluate(ctx.lm) for name, obj in ctx.extras.items()}
        metrics = measured_metrics(size, cheap, None, extra=extra)
        cheap_slos = [s for s in ctx.slos if s.needs != "tasks"]
        violated = [str(s) for s in cheap_slos if (s.violation(metrics) or 0.0) > 0]
        if ctx.tasks is not None:
            if violated:
                screened = "violates " + ", ".join(violated)
            elif _dominated(trial.study, size.value, cheap.value):
                screened = f"dominated on size and {cheap.name}"
            else:
                t = time.perf_counter()
                tasks_m = ctx.tasks.evaluate(ctx.lm)
                forward += time.perf_counter() - t
    total = time.perf_counter() - start
    trial.set_user_attr(ATTR_SEARCH, record(size, cheap, tasks_m, extra))
    timing = TimingRecord(total=total, forward=forward, surgery=surgery)
    trial.set_user_attr(ATTR_TIMING, dict(timing))
    # a trial that might meet a task floor is not rejected (the interval's upper end)
    metrics = measured_metrics(size, cheap, tasks_m, ctx.search_side, extra)
    for slo in ctx.slos:
        v = slo.violation(metrics)
        if v is not None:
            trial.set_constraint(str(slo), v)
    if screened is not None:
        trial.set_user_attr(ATTR_SCREENED, screened)
        raise optuna.TrialPruned(screened)
    values: tuple[float, ...] = (size.value, cheap.value)
    if tasks_m is not None:
        values = (*values, tasks_m.value)
    return values
