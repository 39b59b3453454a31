from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from frontier.laws import (
    FitResult,
    StudyFits,
    fit_linear,
    fit_power,
    fit_quadratic,
    fit_study,
    max_compression,
)
from frontier.study.summary import StudySummary
from frontier.testing import synthetic_summary

R = np.linspace(0.0, 0.6, 40)


def _noisy(y: np.ndarray, sd: float, seed: int = 0) -> np.ndarray:
    return y + np.random.default_rng(seed).normal(0.0, sd, y.shape)


def _covers(fit: FitResult, name: str, true: float) -> bool:
    c = fit.coef(name)
    return c.low <= true <= c.high


# -- recovering known laws ---------------------------------------------------------------
def test_quadratic_recovers_coefficients_with_confidence_intervals() -> None:
    fit = fit_quadratic(R, _noisy(2.5 + 0.8 * R + 3.0 * R**2, 0.003))
    assert fit.ok and fit.n == 40 and fit.form == "quadratic"
    assert fit.value("L0") == pytest.approx(2.5, abs=0.01)
    assert fit.value("a") == pytest.approx(0.8, abs=0.08)
    assert fit.value("b") == pytest.approx(3.0, abs=0.12)
    assert all(_covers(fit, n, v) for n, v in (("L0", 2.5), ("a", 0.8), ("b", 3.0)))
    assert fit.r2 is not None and fit.r2 > 0.999
    assert fit.aic is not None and math.isfinite(fit.aic)
    assert fit.r_range == (0.0, 0.6)
    assert "L0 = 2.5" in fit.describe() and "R²" in fit.describe()


def test_power_law_recovers_coefficients() -> None:
    fit = fit_power(R, _noisy(2.4 * (1 + R) ** 1.7, 0.003))
    assert fit.ok
    assert fit.value("L0") == pytest.approx(2.4, abs=0.01)
    assert fit.value("beta") == pytest.approx(1.7, abs=0.02)
    assert _covers(fit, "L0", 2.4) and _covers(fit, "beta", 1.7)
    np.testing.assert_allclose(fit.predict([0.0, 0.5]), [2.4, 2.4 * 1.5**1.7], rtol=2e-3)


def test_linear_recovers_slope_as_a_loss() -> None:
    fit = fit_linear(R, _noisy(0.7 - 0.35 * R, 0.003), target="arc_easy")
    assert fit.ok and fit.target == "arc_easy"
    assert fit.value("A0") == pytest.approx(0.7, abs=0.005)
    assert fit.value("c") == pytest.approx(0.35, abs=0.02)  # positive: accuracy falls
    assert _covers(fit, "A0", 0.7) and _covers(fit, "c", 0.35)


def test_exact_data_gives_a_finite_aic_and_unit_r2() -> None:
    fit = fit_linear([0.0, 0.1, 0.2, 0.3], [0.7, 0.66, 0.62, 0.58])
    assert fit.ok and fit.r2 == pytest.approx(1.0)
    assert fit.aic is not None and math.isfinite(fit.aic)


def test_aic_prefers_the_true_form() -> None:
    r = np.linspace(0.0, 0.9, 30)
    power_data = _noisy(2.0 * (1 + r) ** 4, 0.01, seed=1)
    quad_data = _noisy(2.5 + 4.0 * R**2, 0.005, seed=1)
    p, q = fit_power(r, power_data), fit_quadratic(r, power_data)
    assert p.aic is not None and q.aic is not None and p.aic < q.aic
    p, q = fit_power(R, quad_data), fit_quadratic(R, quad_data)
    assert p.aic is not None and q.aic is not None and q.aic < p.aic


# -- degenerate inputs --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fit", "r", "y", "why"),
    [
        (fit_quadratic, [0.1, 0.2, 0.3], [1.0, 2.0, 3.5], "at least 4"),
        (fit_power, [0.1, 0.2], [1.0, 2.0], "at least 3"),
        (fit_linear, [0.1, 0.2], [1.0, 2.0], "at least 3"),
        (fit_quadratic, [0.2] * 6, [1, 2, 3, 4, 5, 6], "all r equal"),
        (fit_linear, [0.2] * 6, [1, 2, 3, 4, 5, 6], "all r equal"),
        (fit_quadratic, [0.1, 0.2, 0.1, 0.2, 0.1], [1, 2, 3, 4, 5], "2 distinct"),
        (fit_quadratic, [0.1, 0.2, 0.3, 0.4], [1.0, math.nan, 2.0, 3.0], "non-finite"),
        (fit_power, [0.1, 0.2, math.inf, 0.4], [1.0, 1.5, 2.0, 3.0], "non-finite"),
        (fit_linear, [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5], "constant"),
        (fit_power, [0.1, 0.2, 0.3, 0.4], [2.0, 2.0, 2.0, 2.0], "zero variance"),
        (fit_linear, [], [], "0 point"),
    ],
)
def test_degenerate_inputs_fail_with_a_reason(
    fit: Callable[[Sequence[float], Sequence[float]], FitResult],
    r: Sequence[float],
    y: Sequence[float],
    why: str,
) -> None:
    result = fit(r, y)
    assert not result.ok
    assert result.reason is not None and why in result.reason
    assert result.coefs == () and result.r2 is None and result.aic is None
    assert "not fitted" in result.describe()
    with pytest.raises(ValueError, match="failed fit"):
        result.predict([0.1])


def test_failed_fit_gives_unfit_limit() -> None:
    lim = max_compression(fit_quadratic([0.1], [1.0]), 3.0, upper=True, slo="ppl<2")
    assert lim.status == "unfit" and lim.r is None and "at least 4" in lim.reason


# -- largest compression per SLO, against the analytic answers ------------------------------
def test_max_compression_quadratic_matches_the_formula() -> None:
    fit = fit_quadratic(R, 2.5 + 0.8 * R + 3.0 * R**2)
    bound = 2.5 + math.log(1.5)
    lim = max_compression(fit, bound, upper=True, slo="ppl<1.5")
    l0, a, b = fit.value("L0"), fit.value("a"), fit.value("b")
    expected = (-a + math.sqrt(a * a - 4 * b * (l0 - bound))) / (2 * b)
    assert lim.status == "limit" and lim.r == pytest.approx(expected, abs=1e-9)
    assert not lim.extrapolated and "ppl<1.5" in lim.describe()


def test_max_compression_power_and_linear_match_the_formula() -> None:
    power = fit_power(R, 2.4 * (1 + R) ** 1.7)
    lim = max_compression(power, 3.0, upper=True)
    expected = (3.0 / power.value("L0")) ** (1 / power.value("beta")) - 1
    assert lim.r == pytest.approx(expected, abs=1e-9)
    line = fit_linear(R, 0.7 - 0.35 * R)
    lim = max_compression(line, 0.6, upper=False)
    assert lim.r == pytest.approx((line.value("A0") - 0.6) / line.value("c"), abs=1e-9)


def test_max_compression_never_always_and_extrapolated() -> None:
    line = fit_linear(R, 0.7 - 0.35 * R)
    never = max_compression(line, 0.8, upper=False)
    assert never.status == "never" and never.r is None and "nothing removed" in never.reason
    always = max_compression(line, 0.1, upper=False)
    assert always.status == "always" and always.r is None
    far = max_compression(line, 0.45, upper=False)  # crossing at r ~ 0.71 > 0.6
    assert far.status == "limit" and far.extrapolated and "extrapolated" in far.describe()


def test_max_compression_takes_the_first_crossing() -> None:
    # A downward parabola crosses 2.9 twice in [0, 1); the model is broken after the first.
    r = np.linspace(0.0, 1.0, 20)
    fit = fit_quadratic(r, 2.5 + 4.0 * r - 4.0 * r**2)
    lim = max_compression(fit, 2.9, upper=True)
    assert lim.r == pytest.approx((1 - math.sqrt(1 - 0.4)) / 2, abs=1e-6)


# -- a whole study ------------------------------------------------------------------------------
def _study(**kw: object) -> StudySummary:
    return synthetic_summary(**kw)  # type: ignore[arg-type]


def test_fit_study_recovers_the_synthetic_laws_and_solves_every_slo() -> None:
    s = _study(
        noise=0.002,
        slos=("ppl<1.6", "tasks>=90%", "arc_easy>=0.55", "hellaswag>=95%", "mlp<=80%", "kl<0.5"),
    )
    fits = fit_study(s)
    assert isinstance(fits, StudyFits) and fits.stage == "search" and fits.x == "mlp"
    assert fits.loss_quadratic.n == len(s.points) + 1  # the unpruned model at r = 0
    assert fits.loss_quadratic.value("L0") == pytest.approx(2.6, abs=0.01)
    assert fits.loss_quadratic.value("b") == pytest.approx(2.4, abs=0.2)
    assert fits.tasks["arc_easy"].value("c") == pytest.approx(0.45, abs=0.02)
    assert fits.better_loss == "quadratic" and "quadratic" in fits.loss_verdict()

    by_slo = {lim.slo: lim for lim in fits.limits if lim.fit != "power loss"}
    q = fits.loss_quadratic
    l0, a, b = q.value("L0"), q.value("a"), q.value("b")
    bound = 2.6 + math.log(1.6)  # ppl ratio = exp(L - L_base)
    assert by_slo["ppl<1.6"].r == pytest.approx(
        (-a + math.sqrt(a * a - 4 * b * (l0 - bound))) / (2 * b), abs=1e-8
    )
    ret = fits.retention
    assert ret is not None
    assert by_slo["tasks>=90%"].r == pytest.approx(
        (ret.value("A0") - 0.9) / ret.value("c"), abs=1e-8
    )
    arc, hs = fits.tasks["arc_easy"], fits.tasks["hellaswag"]
    assert by_slo["arc_easy>=0.55"].r == pytest.approx(
        (arc.value("A0") - 0.55) / arc.value("c"), abs=1e-8
    )
    assert by_slo["hellaswag>=95%"].r == pytest.approx(
        (hs.value("A0") - 0.95 * 0.42) / hs.value("c"), abs=1e-8
    )
    assert by_slo["mlp<=80%"].status == "n/a" and "20%" in by_slo["mlp<=80%"].reason
    assert by_slo["kl<0.5"].status == "n/a"
    assert sum(lim.slo == "ppl<1.6" for lim in fits.limits) == 2  # quadratic and power
    assert "fits vs mlp removed" in fits.describe()


def test_fit_study_on_total_parameters_scales_the_axis() -> None:
    s = _study(noise=0.002)
    mlp, params = fit_study(s).loss_quadratic, fit_study(s, x="params").loss_quadratic
    assert params.x == "params"
    # params_removed = 0.62 * mlp_removed, so the linear coefficient grows by 1/0.62.
    assert params.value("a") == pytest.approx(mlp.value("a") / 0.62, rel=1e-6)


def test_fit_study_drops_broken_trials_and_says_so() -> None:
    s = _study()
    broken = dataclasses.replace(s.points[0], loss=math.inf, ppl_ratio=math.inf)
    s = dataclasses.replace(s, points=(broken, *s.points[1:]))
    fits = fit_study(s, include_baseline=False)
    assert fits.loss_quadratic.ok and fits.loss_quadratic.n == len(s.points) - 1
    assert fits.loss_quadratic.note is not None and "non-finite" in fits.loss_quadratic.note


def test_fit_study_final_stage_infers_the_held_out_baseline() -> None:
    s = _study(noise=0.0005)
    fits = fit_study(s, stage="final")
    # The synthetic held-out text adds 0.05 nats to every loss, the unpruned one included.
    assert fits.stage == "final" and fits.baseline_loss == pytest.approx(2.65, abs=1e-9)


def test_fit_study_without_tasks_or_points() -> None:
    s = _study(tasks={}, slos=("ppl<1.5", "tasks>=90%"), n_trials=2, final=False)
    fits = fit_study(s, include_baseline=False)
    assert not fits.loss_quadratic.ok and fits.better_loss is None
    assert "neither" in fits.loss_verdict()
    assert fits.tasks == {} and fits.retention is None
    statuses = {lim.slo: lim.status for lim in fits.limits}
    assert statuses == {"ppl<1.5": "unfit", "tasks>=90%": "n/a"}
