"""The final stage's fallback: plans in the gap between what passed held out and what
failed, chosen on validation text, on a tiny model."""

from __future__ import annotations

from pathlib import Path

import optuna

from frontier.pruning.plan import Plan
from frontier.search import fallback
from frontier.search.find import find
from frontier.study.read import final_record
from frontier.study.schema import ATTR_PLAN, ATTR_WARM
from frontier.testing import TinyStudy, small_spec


def _queue(study: optuna.Study, ctx: object) -> None:
    # (40, 44, 48) and (40, 48, 52) of 64 meet ppl<1.05 at search time and fail held out
    # (test_find's choosing test); (56, 56, 56) passes both, far above them
    for widths in ((56, 56, 56), (40, 48, 52), (40, 44, 48)):
        plan = Plan(widths, (64, 64, 64), 4, 4)
        study.enqueue_trial(
            ctx.space.params_for(plan),  # type: ignore[attr-defined]
            user_attrs={ATTR_WARM: f"queued-{widths}", ATTR_PLAN: plan.to_dict()},
            skip_if_exists=True,
        )


def test_a_gap_above_failing_candidates_is_bisected_on_validation_text(
    tiny_folder: Path, tmp_path: Path, monkeypatch: object
) -> None:
    spec = small_spec(
        tiny_folder,
        f"sqlite:///{tmp_path}/studies/s.db",
        slos=("ppl<1.05",),
        criterion="activation",
        refit=False,
        sampler="random",
        search_window=None,
        warm_start=False,
        trials=3,  # only the queued plans: the gap is theirs
    )
    monkeypatch.setattr(fallback, "VALIDATION_TOKENS", 1024)  # type: ignore[attr-defined]
    study = find(spec, on_start=_queue).study
    rec = study.user_attrs[fallback.ATTR_FALLBACK]
    lower, upper = rec["bracket"]
    assert lower == 140 / 192  # (40, 48, 52): the largest that failed held out
    assert upper == 168 / 192  # (56, 56, 56): the one that passed
    # the steps read the validation part: the report part after the reported tokens
    assert rec["text"]["part"] == "validation" and rec["text"]["skip"] == spec.report_tokens
    assert rec["text"]["role"] == "report"
    assert rec["steps"] and all(lower <= s["mlp_kept"] <= upper for s in rec["steps"])
    assert rec["trial"] is not None  # the smallest plan passing there, a trial re-measured
    if rec["trial"] is not None:
        trial = study.trials[rec["trial"]]
        assert trial.user_attrs[ATTR_WARM].startswith("fallback-uniform-")
        final = final_record(study, trial)
        assert final is not None and final["mlp_kept"] < upper
    # once per study: a second finalisation does not bisect again
    assert fallback.fall_back(None, study, lambda t: None) is None


def test_no_gap_no_fallback(tiny_study: TinyStudy) -> None:
    study = tiny_study.study
    assert fallback.gap(study) is None or fallback.ATTR_FALLBACK in study.user_attrs


def test_only_a_candidate_that_failed_the_bisected_slo_opens_a_gap(tmp_path: Path) -> None:
    from frontier.study.schema import final_key
    from frontier.testing import HandTrial, store_study

    study = store_study(
        f"sqlite:///{tmp_path}/hand.db",
        [
            HandTrial(0.8, 1.2, final_ppl_ratio=1.2),  # passes held out
            HandTrial(0.5, 1.4, final_ppl_ratio=1.8),  # fails ppl<1.5 held out
        ],
        slos=("ppl<1.5",),
    )
    assert fallback.gap(study) == (0.5, 0.8)
    assert fallback.gap(study, ["ppl<1.5"]) == (0.5, 0.8)
    # the same candidate meeting ppl held out and failing a task floor: the perplexity
    # bisection has nothing to close (the SLO-blind gap still sees it)
    rec = dict(study.user_attrs[final_key(1)])
    rec["violations"] = {"ppl<1.5": -0.1, "arc_easy>=90%": 0.02}
    study.set_user_attr(final_key(1), rec)
    assert fallback.gap(study) == (0.5, 0.8)
    assert fallback.gap(study, ["ppl<1.5"]) is None
    # an undecided floor (no violation measured on ppl's side either way) is no ppl failure
    rec["violations"] = {"ppl<1.5": None, "arc_easy>=90%": None}
    study.set_user_attr(final_key(1), rec)
    assert fallback.gap(study, ["ppl<1.5"]) is None
