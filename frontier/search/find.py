"""``find``: run (or resume) a study, re-measure its Pareto set on held-out data, choose."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.search import final_looks
from frontier.search import storage as st
from frontier.search.context import Progress, SearchContext, build_context
from frontier.search.early_stop import StopWhenFlat, check_stop, lift_stop
from frontier.search.fallback import fall_back
from frontier.search.family_search import bisect_families, warm_costs
from frontier.search.protocol import protocol
from frontier.search.space import warm_start_plans
from frontier.search.trial import TrialFailed, finite, measured_metrics, record, run_trial
from frontier.search.uniform import BudgetSpent, bisect_in_study
from frontier.study.early_stop import EarlyStop, describe
from frontier.study.read import choose, final_record, nearest_trial
from frontier.study.schema import (
    ATTR_BASELINE,
    ATTR_BASELINE_REPORT,
    ATTR_FAMILY,
    ATTR_FINGERPRINT,
    ATTR_MODEL_FINGERPRINT,
    ATTR_PLAN,
    ATTR_PROTOCOL,
    ATTR_UNIFORM,
    ATTR_WARM,
    FinalRecord,
    final_key,
)
from frontier.study.spec import StudySpec
from frontier.study.verdicts import feasible

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


@dataclass(frozen=True)
class FindResult:
    study: optuna.Study
    chosen: FrozenTrial | None
    ran: int
    seconds: float


Direction = Literal["minimize", "maximize"]


def directions(spec: StudySpec) -> list[Direction]:
    # fraction of parameters kept, ppl ratio or KL
    out: list[Direction] = ["minimize", "minimize"]
    if spec.tasks:
        out.append("maximize")  # mean retained task accuracy
    return out


def metric_names(spec: StudySpec) -> list[str]:
    """The objectives' names, in :func:`directions`' order (optuna-dashboard shows them)."""
    out = ["params_kept", f"{spec.search_metric}_ratio" if spec.search_metric == "ppl" else "kl"]
    if spec.tasks:
        out.append("tasks_retained")
    return out


def open_study(ctx: SearchContext, *, worker: bool = False) -> optuna.Study:
    spec = ctx.spec
    storage = st.open_storage(spec.storage_url)
    study = optuna.create_study(
        study_name=spec.study_name,
        storage=storage,
        directions=directions(spec),
        load_if_exists=True,
    )
    # a resumed run or a second worker must not replay the same seeded proposals
    seed = st.run_seed(spec.seed, len(study.get_trials(deepcopy=False)), worker=worker)
    study.sampler = st.make_sampler(spec.sampler, seed, ctx.space)
    st.check_fingerprint(study, spec, ctx.fingerprint)
    if study.metric_names is None and not worker:
        study.set_metric_names(metric_names(spec))
    if ATTR_FINGERPRINT not in study.user_attrs:
        # The fingerprint is written last: a study killed while being set up has none and
        # is set up again on the next run; skip_if_exists keeps warm starts queued once.
        study.set_user_attr(ATTR_BASELINE, ctx.baseline())
        study.set_user_attr(ATTR_PROTOCOL, protocol(ctx))
        st.initialise(study, spec, ctx.fingerprint, ctx.lm.fingerprint)
    return study


def warm_start(
    ctx: SearchContext,
    study: optuna.Study,
    *,
    progress: Progress | None = None,
    callbacks: list[TrialCallback] | None = None,
) -> int:
    """Open the search: bisect the uniform keep ratio at the SLOs with trials of the study
    (once; a resumed study keeps its steps), then queue the warm-start plans (once each).

    The bisection stops early when it would overrun the study's trial budget; the study
    then has no ``uniform_limit``, and the warm starts are the plain ladder. Returns the
    number of trials the bisection ran.
    """
    if not ctx.spec.warm_start:
        return 0
    before = st.n_finished(study)
    limit = study.user_attrs.get(ATTR_UNIFORM)
    if limit is None and st.n_finished(study) < ctx.spec.trials:
        if progress is not None:
            progress("bisecting the uniform keep ratio at the SLOs (the baseline)")
        try:
            limit = bisect_in_study(ctx, study, budget=ctx.spec.trials, callbacks=callbacks)
        except BudgetSpent:
            limit = None
        if limit is not None:
            study.set_user_attr(ATTR_UNIFORM, limit)
    keep = None if limit is None else limit.get("keep")
    if keep is not None:  # the allocation families the spec names, each bisected
        bisect_families(
            ctx, study, keep, budget=ctx.spec.trials, callbacks=callbacks, progress=progress
        )
    for label, plan in warm_start_plans(ctx.space, warm_costs(ctx, study, progress), keep):
        family = "uniform" if label.startswith("uniform") else "threshold"
        study.enqueue_trial(
            ctx.space.params_for(plan),
            user_attrs={ATTR_WARM: label, ATTR_PLAN: plan.to_dict(), ATTR_FAMILY: family},
            skip_if_exists=True,
        )
    return st.n_finished(study) - before


def optimize(
    ctx: SearchContext,
    study: optuna.Study,
    *,
    trials: int,
    timeout: float | None,
    callbacks: list[TrialCallback] | None = None,
    progress: Progress | None = None,
) -> int:
    """Run trials until the study has ``trials`` finished ones (all workers), time is up,
    or, with ``spec.early_stop``, the search stops paying
    (:mod:`frontier.study.early_stop`; the first process to see it records it)."""
    remaining = trials - st.n_finished(study)
    if remaining <= 0:
        return 0
    say = progress or (lambda _m: None)
    flat: list[TrialCallback] = []
    if ctx.spec.early_stop:
        rec = check_stop(study, EarlyStop())
        if rec is not None:  # a resumed study decides as the run that stopped it did
            say(f"{describe(rec)}; no more trials (--no-early-stop searches on)")
            return 0
        flat.append(StopWhenFlat(EarlyStop(), say))
    elif lift_stop(study):
        say("the early stop recorded on this study is lifted: --no-early-stop searches on")
    st.requeue_interrupted(study)  # a plan cut short by Ctrl-C/SIGTERM runs again, once
    mine: list[int] = []  # this process's finished trials (other workers run too)

    def count(_study: optuna.Study, trial: FrozenTrial) -> None:
        if st.finished(trial):
            mine.append(trial.number)

    study.optimize(
        lambda trial: run_trial(ctx, trial),
        n_trials=remaining,
        timeout=timeout,
        catch=(TrialFailed,),
        callbacks=[st.StopAfter(trials), count, *flat, *(callbacks or [])],
        gc_after_trial=False,
    )
    return len(mine)


def _evenly_spaced(items: list[FrozenTrial], k: int) -> list[FrozenTrial]:
    """``k`` of ``items`` (all of them if fewer), evenly spaced: with k >= 2 the first and
    the last among them."""
    k = min(k, len(items))
    step = (len(items) - 1) / max(k - 1, 1)
    return [items[round(i * step)] for i in range(k)]


def finalize(ctx: SearchContext, study: optuna.Study, *, progress: Progress | None = None) -> None:
    """Re-measure trials on held-out text and the report documents.

    The trials that met the SLOs at search time are measured from the smallest upward
    (ties: lower search-time figure first) until one meets every SLO on the held-out
    figures: the chosen point, since no smaller trial can be chosen unverified. They are
    all the search-feasible trials, not only the Pareto set: at the edge many plans of one
    size pass on the search sample by a hair, and the one that passes by the most there
    is not the likeliest to pass held out. Then evenly spaced Pareto trials are added up
    to ``spec.report_points`` so the report covers the front, and the bisected uniform
    plan (the baseline the chosen point is judged against) is re-measured too.
    """
    say = progress or (lambda _m: None)
    pareto = sorted(study.best_trials, key=_smallest_first)
    passed = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values is not None and feasible(t.constraints)
    ]
    if not pareto:
        nearest = nearest_trial(study)
        if nearest is not None and nearest.final is None:
            say("no feasible trial: re-measuring the nearest one on held-out data")
            _measure_final(ctx, study, study.get_trials(deepcopy=False)[nearest.number])
        return
    _measure_front(ctx, study, sorted(passed, key=_smallest_first) or pareto, pareto, say)
    number = (study.user_attrs.get(ATTR_UNIFORM) or {}).get("trial")
    if isinstance(number, int) and final_record(study, number) is None:
        say("re-measuring the bisected uniform plan on held-out data (the baseline)")
        _measure_final(ctx, study, study.get_trials(deepcopy=False)[number])
    # a gap between what passed held out and what failed: plans in it, on validation text
    fall_back(ctx, study, lambda t: _measure_final(ctx, study, t), progress=say)


def _smallest_first(t: FrozenTrial) -> tuple[float, float, int]:
    return (t.values[0], t.values[1], t.number)


def _measure_front(
    ctx: SearchContext,
    study: optuna.Study,
    candidates: list[FrozenTrial],
    pareto: list[FrozenTrial],
    say: Progress,
) -> None:
    limit = max(ctx.spec.report_points, 1)
    measured = 0
    for t in candidates:
        rec = final_record(study, t)
        if rec is None or rec.get("spread"):
            if measured == 0:
                say(f"re-measuring up to {limit} trials on held-out text and report documents")
            say(f"held-out: trial {t.number}, candidate {measured + 1} of up to {limit}")
            rec = _measure_final(ctx, study, t, say=say)
        measured += 1
        if rec["feasible"] or measured >= limit:
            break
    rest = [t for t in pareto if final_record(study, t) is None]
    # Every Pareto trial smaller than the chosen one was a candidate above, so these are
    # larger; a later run that finds one a candidate measures it again in full.
    spread = _evenly_spaced(rest, limit - measured)
    for i, t in enumerate(spread, 1):
        say(f"held-out: trial {t.number}, front point {i} of {len(spread)} (for the fits)")
        _measure_final(ctx, study, t, spread=True)


def _measure_final(
    ctx: SearchContext,
    study: optuna.Study,
    t: FrozenTrial,
    *,
    spread: bool = False,
    say: Progress | None = None,
) -> FinalRecord:
    """Re-measure trial ``t`` on held-out text and report documents, on report_tokens, or
    with ``spread`` (a trial measured only to spread the front) on fit_tokens."""
    report = ctx.report_objectives()
    if ATTR_BASELINE_REPORT not in study.user_attrs:
        base: dict[str, Any] = {k: o.evaluate(ctx.lm).to_dict() for k, o in report.items()}
        base["protocol"] = {k: o.protocol() for k, o in report.items()}
        study.set_user_attr(ATTR_BASELINE_REPORT, base)
    objs = ctx.fit_objectives() if spread else report
    tokens = ctx.spec.report_tokens
    if spread and ctx.spec.fit_tokens is not None:
        tokens = min(ctx.spec.fit_tokens, tokens)
    plan = Plan.from_dict(t.user_attrs[ATTR_PLAN])
    # the tasks' report documents in looks until decided (frontier.search.final_looks)
    m = final_looks.measure(ctx, plan, objs, spread=spread, progress=say)
    size, ppl, tasks, checks = m.size, m.ppl, m.tasks, m.checks
    rec = FinalRecord(**record(size, ppl, tasks))
    rec["tokens"] = tokens
    if tokens < ctx.spec.report_tokens:
        rec["spread"] = True
    if checks:
        rec["check_texts"] = {
            source: {"ppl_ratio": finite(m.value), "ppl": finite(m.raw)}
            for source, m in checks.items()
        }
    # a task floor must be met with the stated confidence (the interval's lower end)
    metrics = measured_metrics(size, ppl, tasks, ctx.final_side)
    violations: dict[str, float | None] = {str(s): s.violation(metrics) for s in ctx.slos}
    undecided = [str(s) for s in ctx.slos if s.decision(metrics) == "undecided"]
    if undecided and ctx.spec.confidence is not None:
        rec["undecided"] = undecided
    # the KL SLO has no report-fidelity counterpart; keep its search-time verdict
    for s in ctx.slos:
        if violations[str(s)] is None:
            violations[str(s)] = t.constraints.get(str(s))
    rec["violations"] = violations
    rec["feasible"] = feasible(violations)
    study.set_user_attr(final_key(t.number), dict(rec))
    return rec


def find(
    spec: StudySpec,
    *,
    progress: Progress | None = None,
    callbacks: list[TrialCallback] | None = None,
    on_start: Callable[[optuna.Study, SearchContext], None] | None = None,
    workers: tuple[str, ...] = (),
) -> FindResult:
    """Run the study ``spec`` describes (resuming it if it exists) and choose a point.

    ``workers``: more devices (e.g. ``cuda:1``), each running a ``frontier worker`` of
    the study from the end of the warm start (:mod:`frontier.search.devices`); the
    final re-measurement waits for them.
    """
    from frontier.search import devices

    start = time.perf_counter()
    say = progress or (lambda _m: None)
    st.open_storage(spec.storage_url)  # an unreachable storage fails before the slow part
    ctx = build_context(spec, progress=progress)
    study = open_study(ctx)
    if on_start is not None:
        on_start(study, ctx)
    ran = warm_start(ctx, study, progress=progress, callbacks=callbacks)
    started = devices.start_workers(ctx.spec, workers) if workers else []
    for w in started:
        say(f"worker on {w.device} started (log: {w.log})")
    try:
        ran += optimize(
            ctx, study, trials=spec.trials, timeout=spec.timeout, callbacks=callbacks, progress=say
        )
    except BaseException:
        devices.stop_workers(started)
        raise
    for line in devices.wait_workers(started):
        say(f"warning: {line}")
    finalize(ctx, study, progress=progress)
    return FindResult(study, choose(study), ran, time.perf_counter() - start)


def worker(
    study_name: str,
    storage_url: str,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    device: str | None = None,
    dtype: str | None = None,
    early_stop: bool | None = None,
    progress: Progress | None = None,
    callbacks: list[TrialCallback] | None = None,
) -> int:
    """Join a study: its settings come from the storage, not from this worker's flags;
    ``device`` (e.g. another GPU of the same kind) and ``dtype`` may be given, and are
    refused, before the model loads, where they would change what trials measure;
    ``early_stop`` (default: the study's) does not change what they measure."""
    study0 = st.load_existing(study_name, storage_url)
    stored = st.stored_spec(study0)
    spec = stored.replace(
        study=study_name,
        storage=storage_url,
        device=device or stored.device,
        dtype=dtype or stored.dtype,
        early_stop=stored.early_stop if early_stop is None else early_stop,
    ).resolved()
    if study0.user_attrs.get(ATTR_FINGERPRINT) is not None:
        diffs = st.settings_changed(study0, spec)
        if diffs:
            raise FrontierError(
                f"study {study_name!r} measures with other settings than this worker "
                f"({'; '.join(diffs)}); join it with --device/--dtype of the same kind"
            )
    ctx = build_context(spec, progress=progress)
    if ctx.lm.fingerprint != study0.user_attrs.get(ATTR_MODEL_FINGERPRINT):
        raise FrontierError(
            f"this worker's copy of {spec.model} has other weights than the study's model"
        )
    study = open_study(ctx, worker=True)
    return optimize(
        ctx,
        study,
        trials=trials or spec.trials,
        timeout=timeout,
        callbacks=callbacks,
        progress=progress,
    )
