"""SLO limits from fitted laws: absolute task floors, missing baselines, the final stage."""

from __future__ import annotations

import dataclasses
import math

import pytest

from frontier.laws import MaxCompression, fit_study
from frontier.study.summary import StudySummary
from frontier.testing import synthetic_summary

# arc_easy A0 0.70 c 0.45, hellaswag 0.42 / 0.20, piqa 0.72 / 0.25 (synthetic_summary)
SLOS = ("ppl<1.6", "tasks>=0.55", "tasks>=90%", "piqa>=0.6", "hellaswag>=95%")


def _study(**kw: object) -> StudySummary:
    return synthetic_summary(noise=0.001, slos=SLOS, **kw)  # type: ignore[arg-type]


def _by_slo(limits: tuple[MaxCompression, ...]) -> dict[str, MaxCompression]:
    return {lim.slo: lim for lim in limits if lim.fit != "power loss"}


def test_absolute_mean_task_floor_is_solved_on_the_mean_accuracy_fit() -> None:
    fits = fit_study(_study())
    lim = _by_slo(fits.limits)["tasks>=0.55"]
    mean = fits.mean_acc
    assert mean is not None and lim.status == "limit" and lim.r is not None
    assert mean.value("A0") == pytest.approx((0.70 + 0.42 + 0.72) / 3, abs=0.01)
    assert mean.value("c") == pytest.approx((0.45 + 0.20 + 0.25) / 3, abs=0.02)
    assert lim.r == pytest.approx((mean.value("A0") - 0.55) / mean.value("c"), abs=1e-8)
    # not the retention fit: 0.55 is an accuracy, not a fraction of the baseline
    ret = fits.retention
    assert ret is not None
    assert lim.r != pytest.approx((ret.value("A0") - 0.55) / ret.value("c"), abs=1e-3)


def test_absolute_single_task_floor_uses_that_task_and_no_baseline() -> None:
    fits = fit_study(_study())
    piqa = fits.tasks["piqa"]
    lim = _by_slo(fits.limits)["piqa>=0.6"]
    assert lim.r == pytest.approx((piqa.value("A0") - 0.6) / piqa.value("c"), abs=1e-8)
    assert lim.r == pytest.approx((0.72 - 0.6) / 0.25, abs=0.02)


def test_relative_task_floor_without_a_baseline_is_not_solved() -> None:
    s = _study()
    s = dataclasses.replace(s, baseline_tasks={"arc_easy": 0.70, "piqa": 0.72})
    lim = _by_slo(fit_study(s).limits)["hellaswag>=95%"]
    assert lim.status == "n/a" and lim.r is None
    assert lim.reason == "no baseline for hellaswag"


def test_final_stage_limits_use_the_held_out_baseline() -> None:
    s = synthetic_summary(noise=0.001, slos=("ppl<1.6", "hellaswag>=80%"))
    assert len(s.final) >= 20
    final = fit_study(s, stage="final")
    search = fit_study(s)
    assert final.stage == "final"
    # held-out text: every loss 0.05 nats higher, so the ppl bound moves with it
    q = final.loss_quadratic
    l0, a, b = q.value("L0"), q.value("a"), q.value("b")
    assert final.baseline_loss == pytest.approx(2.65, abs=1e-3)
    assert final.baseline_loss is not None
    bound = final.baseline_loss + math.log(1.6)
    lim = _by_slo(final.limits)["ppl<1.6"]
    assert lim.r == pytest.approx(
        (-a + math.sqrt(a * a - 4 * b * (l0 - bound))) / (2 * b), abs=1e-8
    )
    # the same law underneath: the two stages agree on the limit
    assert lim.r == pytest.approx(_by_slo(search.limits)["ppl<1.6"].r, abs=0.02)
    # a relative floor on the final stage reads the report documents' baseline when there is one
    hs = final.tasks["hellaswag"]
    base_final = dataclasses.replace(s, baseline_tasks_final={"hellaswag": 0.40})
    lim_hs = _by_slo(fit_study(base_final, stage="final").limits)["hellaswag>=80%"]
    assert lim_hs.r == pytest.approx((hs.value("A0") - 0.8 * 0.40) / hs.value("c"), abs=1e-8)
    lim_search_base = _by_slo(final.limits)["hellaswag>=80%"]
    assert lim_search_base.r == pytest.approx(
        (hs.value("A0") - 0.8 * 0.42) / hs.value("c"), abs=1e-8
    )
