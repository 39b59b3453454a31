"""The final stage's fallback: plans between the largest that passed held out and the
smallest that failed, chosen on a validation text (#32, item 4).

When the search text misleads (Gemma-3-270M: three 50%-removed plans at 1.88-1.96 there,
2.13-2.16 held out), every candidate smaller than the chosen point fails held out and the
chosen point can lie far above them (the keep-0.6 warm start, 39.8%), the held-out limit
somewhere between, unmeasured. Then the uniform keep is bisected between the two (to
:data:`TOL`), each step measured on the *validation* part of the evaluation text: its
report part after the tokens the reported figures read
(:meth:`frontier.search.context.SearchContext.validation_objective`), so the reported
figure stays on text nothing chose on. The smallest plan that passes there becomes a
trial of the study (``fallback-uniform-…``), re-measured held out like any candidate; the
steps are recorded on the study (``frontier:fallback``), each naming its text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.study.read import choose, final_record

ATTR_FALLBACK = "frontier:fallback"
GAP = 0.02  # of MLP kept: a smaller gap between passed and failed is left alone
TOL = 0.01  # the bisection's bracket, of the keep ratio
VALIDATION_TOKENS = 8192

Measure = Callable[[FrozenTrial], Any]


def _kept(study: optuna.Study, t: FrozenTrial) -> float | None:
    rec = final_record(study, t)
    value = None if rec is None else rec.get("mlp_kept")
    return float(value) if isinstance(value, (int, float)) else None


def _failed_on(rec: Mapping[str, Any], slos: Collection[str] | None) -> bool:
    """Whether a held-out record failed on one of ``slos`` (any SLO where None, or where
    the record names no per-SLO violations)."""
    if rec.get("feasible"):
        return False
    violations = rec.get("violations")
    if slos is None or not isinstance(violations, dict):
        return True
    return any((violations.get(s) or 0.0) > 0 for s in slos)


def gap(study: optuna.Study, slos: Collection[str] | None = None) -> tuple[float, float] | None:
    """(largest failing, smallest passing) MLP kept among the held-out candidates, where
    they lie more than :data:`GAP` apart (the passing end 1.0 when none passed). With
    ``slos``, only a candidate that failed one of them counts as failing: one that met
    them held out and missed another SLO (a task floor) says nothing of where they fail."""
    chosen = choose(study)
    upper = 1.0 if chosen is None else _kept(study, chosen)
    if upper is None:
        return None
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        rec = final_record(study, t)
        if rec is None or rec.get("spread") or not _failed_on(rec, slos):
            continue
        kept = _kept(study, t)
        if kept is not None and kept < upper:
            failed.append(kept)
    if not failed or upper - max(failed) <= GAP:
        return None
    return max(failed), upper


def fall_back(
    ctx: Any,
    study: optuna.Study,
    measure_final: Measure,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """Bisect the uniform keep in the gap on the validation text; queue, run and re-measure
    held out the smallest plan that passes there. The record (also on the study), or None
    where no candidate that failed a perplexity SLO held out leaves a gap, or the study has
    no perplexity SLO to bisect at."""
    from frontier.search.trial import TrialFailed, measured_metrics, run_trial
    from frontier.search.uniform import bisect_uniform, quality_slos
    from frontier.study.schema import ATTR_FAMILY, ATTR_PLAN, ATTR_WARM

    say = progress or (lambda _m: None)
    if study.user_attrs.get(ATTR_FALLBACK) is not None:
        return None  # once per study
    quality = [s for s in quality_slos(ctx.slos) if s.metric == "ppl"]
    if not quality:
        return None
    # the bisection decides the perplexity SLOs only: a gap left by candidates that met
    # them held out and failed (or could not decide) a task floor is not one it can close
    found = gap(study, [str(s) for s in quality])
    if found is None:
        if gap(study) is not None:
            say(
                "no fallback: the candidates that failed held out met the perplexity SLO "
                "there (a task floor failed or was undecided), which a uniform bisection on "
                "perplexity cannot decide"
            )
        return None
    lower, upper = found
    try:
        validation = ctx.validation_objective(VALIDATION_TOKENS)
    except FrontierError as exc:
        say(f"no fallback: {exc}")
        return None
    text = {**validation.protocol(), "part": "validation"}
    say(
        f"every candidate with more than {100 * (1 - upper):.1f}% removed failed held out: "
        f"bisecting the uniform keep between {100 * (1 - upper):.1f}% and {100 * (1 - lower):.1f}% "
        "removed on the validation text"
    )
    steps: list[dict[str, Any]] = []
    start = time.perf_counter()

    def check(plan: Plan) -> tuple[bool, float]:
        with ctx.pruner.pruned(plan):
            size = ctx.size.evaluate(ctx.lm)
            m = validation.evaluate(ctx.lm)
        metrics = measured_metrics(size, m, None)
        ok = all((s.violation(metrics) or 0.0) <= 0 for s in quality)
        steps.append({"mlp_kept": plan.kept_fraction, "ppl_ratio": m.value, "feasible": ok})
        return ok, float(m.value)

    bisection = bisect_uniform(
        ctx.pruner.full, check, lo=lower, hi=upper, tol=TOL, multiple=ctx.spec.multiple
    )
    record: dict[str, Any] = {
        "text": text,
        "bracket": [lower, upper],
        "steps": steps,
        "trial": None,
        "seconds": None,
    }
    best = bisection.best
    if best is not None and best.plan.kept_fraction < upper:
        label = f"fallback-uniform-{best.keep:.3f}"
        study.enqueue_trial(
            ctx.space.params_for(best.plan),
            user_attrs={ATTR_WARM: label, ATTR_PLAN: best.plan.to_dict(), ATTR_FAMILY: "uniform"},
        )
        study.optimize(
            lambda tr: run_trial(ctx, tr), n_trials=1, catch=(TrialFailed,), gc_after_trial=False
        )
        trial = study.get_trials(deepcopy=False)[-1]
        record["trial"] = trial.number
        if trial.state == TrialState.COMPLETE:
            say(f"held-out: trial {trial.number}, the fallback's plan")
            measure_final(trial)
    record["seconds"] = time.perf_counter() - start
    study.set_user_attr(ATTR_FALLBACK, record)
    return record
