"""Exact figures of the law fits: standard errors, intervals, R², AIC, reasons and texts.

Each expected figure is computed here from its definition (OLS covariance s²(XᵀX)⁻¹, the
t quantile on the residual degrees of freedom, AIC = n·ln(RSS/n) + 2(k+1),
R² = 1 − RSS/TSS) or written out in full, so that a change to a formula, a threshold or a
message shows.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from scipy import optimize, stats

from frontier.laws import (
    Coef,
    FitResult,
    Form,
    MaxCompression,
    StudyFits,
    fit,
    fit_linear,
    fit_power,
    fit_quadratic,
    fit_study,
    max_compression,
)
from frontier.laws._study import _baseline_point
from frontier.study.summary import StudySummary, TrialPoint
from frontier.testing import synthetic_summary

Fitter = Callable[..., FitResult]
R = np.linspace(0.0, 0.6, 7)
NOISE = np.array([0.013, -0.021, 0.008, 0.017, -0.011, -0.019, 0.012])


def _study(**kw: Any) -> StudySummary:
    return synthetic_summary(noise=0.002, **kw)


def _expected_from(
    r: np.ndarray, y: np.ndarray, params: np.ndarray, cov: np.ndarray, names: Sequence[str]
) -> dict[str, Any]:
    """What a fit must report for these parameters and covariance, by the definitions."""
    n, k = r.size, len(names)
    t = stats.t.ppf(0.975, n - k)
    se = np.sqrt(np.diag(cov))
    return {
        "coefs": [
            (name, p, s, p - t * s, p + t * s) for name, p, s in zip(names, params, se, strict=True)
        ],
        "n": n,
        "k": k,
        "r_range": (float(r.min()), float(r.max())),
    }


def _assert_fit(fit: FitResult, r: np.ndarray, y: np.ndarray, exp: dict[str, Any]) -> None:
    got = [(c.name, c.value, c.stderr, c.low, c.high) for c in fit.coefs]
    assert [g[0] for g in got] == [e[0] for e in exp["coefs"]]
    np.testing.assert_allclose(
        [g[1:] for g in got], [e[1:] for e in exp["coefs"]], rtol=1e-6, atol=1e-12
    )
    resid = y - fit.predict(r)
    rss, tss = float(resid @ resid), float(((y - y.mean()) ** 2).sum())
    n, k = exp["n"], exp["k"]
    assert fit.ok and fit.n == n and fit.reason is None and fit.r_range == exp["r_range"]
    assert fit.r2 == pytest.approx(1.0 - rss / tss, rel=1e-9)
    assert fit.aic == pytest.approx(n * math.log(rss / n) + 2 * (k + 1), rel=1e-9)


# -- the fits against their definitions ----------------------------------------------------
@pytest.mark.parametrize(
    ("fitter", "columns", "sign", "names"),
    [
        (fit_linear, lambda v: [np.ones_like(v), v], [1.0, -1.0], ("A0", "c")),
        (fit_quadratic, lambda v: [np.ones_like(v), v, v * v], [1.0, 1.0, 1.0], ("L0", "a", "b")),
    ],
)
def test_ols_fits_report_the_textbook_errors_intervals_r2_and_aic(
    fitter: Fitter,
    columns: Callable[[np.ndarray], list[np.ndarray]],
    sign: list[float],
    names: tuple[str, ...],
) -> None:
    y = 0.7 - 0.35 * R + 0.4 * R**2 + NOISE  # curved and noisy: no form fits it exactly
    design = np.column_stack(columns(R))
    xtx_inv = np.linalg.inv(design.T @ design)
    beta = xtx_inv @ design.T @ y
    resid = y - design @ beta
    s2 = float(resid @ resid) / (R.size - len(names))
    cov = s2 * xtx_inv * np.outer(sign, sign)
    fit = fitter(R, y, target="t", x="params", note="a note")
    _assert_fit(fit, R, y, _expected_from(R, y, beta * np.array(sign), cov, names))
    assert (fit.target, fit.x, fit.note) == ("t", "params", "a note")


def test_power_fit_is_a_least_squares_solution_with_the_gauss_newton_covariance() -> None:
    y = 2.4 * (1 + R) ** 1.7 + NOISE
    fit = fit_power(R, y, target="t", x="params", note="a note")
    l0, beta = fit.value("L0"), fit.value("beta")
    grow = (1 + R) ** beta
    jac = np.column_stack([grow, l0 * grow * np.log1p(R)])  # d model / d (L0, beta)
    resid = y - l0 * grow
    np.testing.assert_allclose(jac.T @ resid, 0.0, atol=1e-8)  # the normal equations hold
    cov = float(resid @ resid) / (R.size - 2) * np.linalg.inv(jac.T @ jac)
    _assert_fit(fit, R, y, _expected_from(R, y, np.array([l0, beta]), cov, ("L0", "beta")))
    assert (fit.form, fit.target, fit.x, fit.note) == ("power", "t", "params", "a note")


def test_fits_name_their_target_and_axis_by_default() -> None:
    y = 2.0 + R + NOISE
    assert [(f.form, f.target, f.x, f.note) for f in (fit_quadratic(R, y), fit_power(R, y))] == [
        ("quadratic", "loss", "mlp", None),
        ("power", "loss", "mlp", None),
    ]
    line = fit_linear(R, y)
    assert (line.form, line.target, line.x, line.note) == ("linear", "accuracy", "mlp", None)


def test_the_fewest_points_and_distinct_r_values_that_identify_a_form_are_enough() -> None:
    # k parameters need k + 1 points (one residual degree of freedom) and k distinct r
    cases: list[tuple[Fitter, list[float], list[float]]] = [
        (fit_linear, [0.0, 0.3, 0.6], [0.7, 0.62, 0.5]),
        (fit_linear, [0.0, 0.6, 0.6], [0.7, 0.5, 0.52]),
        (fit_power, [0.0, 0.3, 0.6], [2.0, 2.5, 3.3]),
        (fit_power, [0.0, 0.6, 0.6], [2.0, 3.3, 3.4]),
        (fit_quadratic, [0.0, 0.2, 0.4, 0.6], [2.0, 2.3, 2.5, 3.2]),
        (fit_quadratic, [0.0, 0.3, 0.6, 0.6], [2.0, 2.3, 3.1, 3.2]),
    ]
    for fitter, r, y in cases:
        result = fitter(r, y)
        assert result.ok, (fitter.__name__, r, result.reason)
        k = len(result.coefs)
        assert result.n == len(r)
        if len(r) == k + 1:  # one degree of freedom: the interval is ±12.71 standard errors
            c = result.coefs[0]
            assert c.high - c.value == pytest.approx(stats.t.ppf(0.975, 1) * c.stderr)


def test_fits_read_booleans_as_zero_and_one() -> None:
    # e.g. per-item correctness as the target: numpy cannot subtract booleans, the fits can
    r, y = [0.0, 0.2, 0.4, 0.6], [True, True, False, False]
    as_float = [1.0, 1.0, 0.0, 0.0]
    for fitter in (fit_linear, fit_quadratic, fit_power):
        assert fitter(r, y) == fitter(r, as_float)
    flags = [False, True, True, False, True]
    acc = [0.7, 0.5, 0.52, 0.69, 0.49]
    assert fit_linear(flags, acc) == fit_linear([float(f) for f in flags], acc)


# -- fits that cannot be made --------------------------------------------------------------
_HUGE = [1e200, -1e200, 1e200]
FAILURES: list[tuple[Form, list[float], list[float], str]] = [
    ("linear", [0.1, 0.2, 0.3], [1.0, 2.0], "3 r values for 2 acc values"),
    (
        "power",
        [0.1, 0.2, 0.3, 0.4],
        [1.0, math.nan, 2.0, 3.0],
        "1 non-finite value(s) (NaN or inf) in r or acc",
    ),
    (
        "quadratic",
        [0.1, math.inf, 0.3, 0.4],
        [1.0, math.nan, 2.0, 3.0],
        "2 non-finite value(s) (NaN or inf) in r or acc",
    ),
    ("quadratic", [0.1, 0.2, 0.3], [1.0, 2.0, 3.5], "3 point(s); a quadratic fit needs at least 4"),
    ("power", [0.1, 0.2], [1.0, 2.0], "2 point(s); a power fit needs at least 3"),
    ("linear", [], [], "0 point(s); a linear fit needs at least 3"),
    ("linear", [0.2] * 4, [1.0, 2.0, 3.0, 4.0], "all r equal (0.2): no spread to fit a curve"),
    (
        "quadratic",
        [0.1, 0.2, 0.1, 0.2, 0.1],
        [1, 2, 3, 4, 5],
        "only 2 distinct r values; a quadratic fit needs 3",
    ),
    (
        "power",
        [0.1, 0.2, 0.3],
        [2.5, 2.5, 2.5],
        "acc is constant (2.5): zero variance, R² undefined",
    ),
    ("linear", [0.0, 1e-20, 0.0], [1.0, 2.0, 3.0], "design matrix is singular"),
    ("quadratic", [0.0, 1e-20, 2e-20, 0.0], [1.0, 2.0, 3.0, 4.0], "design matrix is singular"),
    ("linear", [0.0, 1.0, 2.0], _HUGE, "covariance is not finite"),  # RSS overflows
    ("power", [0.0, 0.1, 0.2], [1e-300, 2e-300, 1e-300], "covariance is not finite"),
    (
        "power",
        [0.0, 0.5, 0.9],
        [-1e308, 1.0, -1e308],
        "nonlinear least squares failed: Covariance of the parameters could not be estimated",
    ),
    (
        "power",
        [0.0, 0.1, 0.2, 0.3],
        [0.0, 0.0, 0.0, 1.0],
        "nonlinear least squares failed: Optimal parameters not found: "
        "Number of calls to function has reached maxfev = 10000.",
    ),
]
_FITTERS: dict[str, Fitter] = {"linear": fit_linear, "quadratic": fit_quadratic, "power": fit_power}


@pytest.mark.parametrize(("form", "r", "y", "reason"), FAILURES)
def test_a_fit_that_cannot_be_made_says_exactly_why(
    form: Form, r: list[float], y: list[float], reason: str
) -> None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = _FITTERS[form](r, y, target="acc", x="params", note="a note")
    assert result == FitResult(
        form=form, target="acc", x="params", ok=False, n=len(r), reason=reason
    )
    assert result.describe() == f"{form} fit of acc vs params removed: not fitted ({reason})"
    assert max_compression(result, 0.5, upper=False, slo="acc>=0.5") == MaxCompression(
        "acc>=0.5", f"{form} acc", "unfit", reason=reason
    )


def test_a_failing_optimiser_is_reported_by_its_first_line_or_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def raising(exc: Exception) -> Callable[..., Any]:
        def curve_fit(*args: Any, **kw: Any) -> Any:
            raise exc

        return curve_fit

    y = 2.4 * (1 + R) ** 1.7
    for exc, shown in [
        (RuntimeError("did not converge\nafter 10 steps"), "did not converge"),
        (ValueError("  bad start  "), "bad start"),
        (RuntimeError(""), "RuntimeError"),
        (ValueError(" \n "), "ValueError"),
    ]:
        monkeypatch.setattr(optimize, "curve_fit", raising(exc))
        assert fit_power(R, y).reason == f"nonlinear least squares failed: {shown}"


def test_only_optimize_warnings_fail_a_power_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    real = optimize.curve_fit

    def warning(category: type[Warning]) -> Callable[..., Any]:
        def curve_fit(*args: Any, **kw: Any) -> Any:
            warnings.warn("something odd", category, stacklevel=1)
            return real(*args, **kw)

        return curve_fit

    y = 2.4 * (1 + R) ** 1.7
    monkeypatch.setattr(optimize, "curve_fit", warning(RuntimeWarning))
    with pytest.warns(RuntimeWarning, match="something odd"):
        assert fit_power(R, y).ok  # an overflow while searching is no failure
    monkeypatch.setattr(optimize, "curve_fit", warning(optimize.OptimizeWarning))
    assert fit_power(R, y).reason == "nonlinear least squares failed: something odd"


# -- where the power fit starts ----------------------------------------------------------
def test_power_fit_starts_from_the_log_log_line_when_every_value_is_positive() -> None:
    # steep laws: from (1, 1) or from the smallest-r value the optimiser ends elsewhere
    r = np.linspace(0.0, 0.9, 12)
    for l0, beta in [(5.0, 40.0), (0.001, 60.0)]:
        fit = fit_power(r, l0 * (1 + r) ** beta)
        assert fit.value("L0") == pytest.approx(l0, rel=1e-6)
        assert fit.value("beta") == pytest.approx(beta, rel=1e-6)


def test_power_fit_without_positive_data_starts_from_the_smallest_r_point() -> None:
    # no log-log line through negative values; L0 starts at the value with least removed
    r = np.linspace(0.9, 0.0, 12)  # the smallest r last
    fit = fit_power(r, -0.01 * (1 + r) ** 30)
    assert fit.value("L0") == pytest.approx(-0.01, rel=1e-6)
    assert fit.value("beta") == pytest.approx(30.0, rel=1e-6)
    # a zero has no logarithm either: the fit still reaches a least-squares solution
    r = R
    y = np.r_[0.0, 0.05 * (1 + r[1:]) ** 6]
    fit = fit_power(r, y)
    l0, beta = fit.value("L0"), fit.value("beta")
    grow = (1 + r) ** beta
    jac = np.column_stack([grow, l0 * grow * np.log1p(r)])
    assert fit.ok
    np.testing.assert_allclose(jac.T @ (y - l0 * grow), 0.0, atol=1e-8)


# -- largest compression: the edges --------------------------------------------------------
def _hand_fit(
    form: Form, r_range: tuple[float, float] | None = (0.0, 0.6), **values: float
) -> FitResult:
    coefs = tuple(Coef(name, v, 0.0, v, v) for name, v in values.items())
    return FitResult(
        form=form, target="acc", x="mlp", ok=True, n=9, coefs=coefs, r2=1.0, aic=0.0,
        r_range=r_range,
    )  # fmt: skip


def test_max_compression_edges_have_exact_answers() -> None:
    line = _hand_fit("linear", A0=1.0, c=1.0)
    # met with equality counts as met: at r = 0, and at the edge of the data (not beyond it)
    assert max_compression(line, 1.0, upper=False, slo="s") == MaxCompression(
        "s", "linear acc", "limit", r=0.0, extrapolated=False
    )
    at_edge = dataclasses.replace(line, r_range=(0.0, 0.5))
    assert max_compression(at_edge, 0.5, upper=False, slo="s") == MaxCompression(
        "s", "linear acc", "limit", r=0.5, extrapolated=False
    )
    # a fit without a data range is not extrapolated below ``hi``
    no_range = dataclasses.replace(line, r_range=None)
    lim = max_compression(no_range, 0.7, upper=False)
    assert (lim.slo, lim.status, lim.extrapolated) == ("", "limit", False)
    assert lim.r == pytest.approx(0.3, abs=1e-12)
    # a curve that touches the bound without crossing it meets it everywhere
    touching = _hand_fit("quadratic", L0=0.25, a=-1.0, b=1.0)  # (r - 0.5)², zero at 0.5
    assert max_compression(touching, 0.0, upper=False, slo="s") == MaxCompression(
        "s",
        "quadratic acc",
        "always",
        reason="the fitted curve meets it for every fraction removed",
    )
    assert max_compression(touching, -0.1, upper=True, slo="s") == MaxCompression(
        "s", "quadratic acc", "never", reason="the fitted curve misses it even with nothing removed"
    )
    failed = FitResult(form="power", target="loss", x="mlp", ok=False, n=0)
    assert max_compression(failed, 1.0, upper=True) == MaxCompression(
        "", "power loss", "unfit", reason="fit failed"
    )


def test_max_compression_finds_a_violation_narrower_than_a_coarse_grid() -> None:
    # 1.000001 − (r − 0.311)²: above 1 only on (0.310, 0.312)
    bump = _hand_fit("quadratic", L0=1.000001 - 0.311**2, a=2 * 0.311, b=-1.0)
    lim = max_compression(bump, 1.0, upper=True, slo="s")
    assert lim.status == "limit" and lim.r == pytest.approx(0.310, abs=1e-9)


# -- texts -----------------------------------------------------------------------------------
def test_describe_texts() -> None:
    coefs = (Coef("A0", 0.7, 0.01, 0.68, 0.72), Coef("c", 0.35, 0.02, 0.3, 0.4))
    line = FitResult(
        form="linear", target="acc", x="params", ok=True, n=5, coefs=coefs, r2=0.98765,
        aic=-12.34,
    )  # fmt: skip
    assert coefs[0].describe() == "A0 = 0.7 ± 0.02"
    assert line.describe() == (
        "linear fit of acc vs params removed (n=5): A0 = 0.7 ± 0.02, c = 0.35 ± 0.05; "
        "R² = 0.988, AIC = -12.3"
    )
    with pytest.raises(KeyError, match="linear fit has no coefficient 'b'"):
        line.coef("b")
    lim = MaxCompression("ppl<1.5", "quadratic loss", "limit", r=0.25)
    assert lim.describe() == "ppl<1.5: met up to 25.0% removed by the quadratic loss fit"
    far = dataclasses.replace(lim, extrapolated=True)
    assert far.describe() == (
        "ppl<1.5: met up to 25.0% removed by the quadratic loss fit (extrapolated beyond the data)"
    )
    na = MaxCompression("kl<0.5", "-", "n/a", reason="KL divergence is not fitted")
    assert na.describe() == "kl<0.5 (-): n/a: KL divergence is not fitted"


def _loss_fit(form: Form, aic: float | None) -> FitResult:
    if aic is None:
        return FitResult(form=form, target="loss", x="mlp", ok=False, n=2, reason=f"{form} broke")
    return FitResult(form=form, target="loss", x="mlp", ok=True, n=9, r2=0.9, aic=aic)


@pytest.mark.parametrize(
    ("q_aic", "p_aic", "better", "verdict"),
    [
        (10.0, 12.0, "quadratic", "quadratic fits better (ΔAIC = 2.0)"),
        (10.0, 11.5, "quadratic", "quadratic and power law fit equally well (ΔAIC = 1.5 < 2.0)"),
        (15.0, 10.0, "power", "power fits better (ΔAIC = 5.0)"),
        (3.0, None, None, "only the quadratic fit succeeded (power: power broke)"),
        (None, 3.0, None, "only the power fit succeeded (quadratic: quadratic broke)"),
        (None, None, None, "neither loss fit succeeded (quadratic broke; power broke)"),
    ],
)
def test_loss_verdict_and_describe(
    q_aic: float | None, p_aic: float | None, better: str | None, verdict: str
) -> None:
    fits = StudyFits(
        x="mlp",
        stage="final",
        loss_quadratic=_loss_fit("quadratic", q_aic),
        loss_power=_loss_fit("power", p_aic),
        tasks={"a": _loss_fit("linear", 1.0), "b": _loss_fit("linear", None)},
        limits=(MaxCompression("kl<0.5", "-", "n/a"),) * 3,
    )
    assert fits.better_loss == better and fits.loss_verdict() == verdict
    assert fits.describe() == (
        f"final fits vs mlp removed: {verdict}; 1/2 task lines fitted; 3 SLO limits"
    )


# -- a whole study -----------------------------------------------------------------------------
def test_study_fits_label_each_law_and_count_the_points_left_out() -> None:
    s = _study()
    nan_tasks = dict.fromkeys(s.baseline_tasks, math.nan)
    pts = list(s.points)
    for i in (4, 9):  # broken models in the middle of the list: both left out, the rest kept
        pts[i] = dataclasses.replace(pts[i], loss=math.inf, tasks=nan_tasks)
    broken = dataclasses.replace(s, points=tuple(pts))
    fits = fit_study(broken, x="params")
    note = "2 point(s) with a non-finite value left out"
    laws = [fits.loss_quadratic, fits.loss_power, *fits.tasks.values()]
    assert fits.mean_acc is not None and fits.retention is not None
    laws += [fits.mean_acc, fits.retention]
    assert [(f.target, f.x, f.note) for f in laws] == [
        ("loss", "params", note),
        ("loss", "params", note),
        *[(t, "params", note) for t in s.task_names],
        ("mean_acc", "params", note),
        ("retention", "params", note),
    ]
    measured = 1 + sum(bool(p.tasks) for p in broken.points) - 2  # the unpruned point, less 2
    assert fits.loss_quadratic.n == len(s.points) + 1 - 2 and fits.mean_acc.n == measured
    clean = fit_study(s)
    assert clean.loss_quadratic.note is None and clean.retention is not None
    assert clean.retention.note is None


def test_mean_accuracy_and_retention_lines_match_hand_built_series() -> None:
    s = _study()
    pts = list(s.points)
    pts[3] = dataclasses.replace(pts[3], tasks={"arc_easy": 0.5})  # not every task: no mean
    # a task whose unpruned accuracy is 0 has no retention and is left out of both means
    base = {**s.baseline_tasks, "zero": 0.0}
    s = dataclasses.replace(s, points=tuple(pts), baseline_tasks=base)
    names = ("arc_easy", "hellaswag", "piqa")
    rows = [(0.0, base)] + [(p.mlp_removed, p.tasks) for p in s.points]
    full = [(r, t) for r, t in rows if all(n in t for n in names)]
    r = np.array([r for r, _ in full])
    mean = np.array([sum(t[n] for n in names) / 3 for _, t in full])
    ret = np.array([sum(t[n] / base[n] for n in names) / 3 for _, t in full])
    fits = fit_study(s)
    assert fits.mean_acc is not None and fits.retention is not None
    for got, want in [(fits.mean_acc, fit_linear(r, mean)), (fits.retention, fit_linear(r, ret))]:
        assert got.n == want.n == len(full)
        np.testing.assert_allclose([c.value for c in got.coefs], [c.value for c in want.coefs])


def test_the_unpruned_point_is_added_at_the_search_stage_only() -> None:
    s = _study()
    full = s.points[0].full
    assert _baseline_point(s, full) == TrialPoint(
        number=-1, mlp_removed=0.0, params_removed=0.0, loss=s.baseline_loss, ppl_ratio=1.0,
        tasks=s.baseline_tasks, feasible=True, pareto=False, chosen=False, widths=full,
        full=full, stage="search",
    )  # fmt: skip
    assert fit_study(s).loss_quadratic.n == len(s.points) + 1
    assert fit_study(s, include_baseline=False).loss_quadratic.n == len(s.points)
    assert fit_study(s, stage="final").loss_quadratic.n == len(s.final)
    one = dataclasses.replace(s, points=s.points[:1])
    assert fit_study(one).loss_quadratic.reason == "2 point(s); a quadratic fit needs at least 4"


def _final_point(s: StudySummary, r: float, loss: float | None, ratio: float | None) -> TrialPoint:
    return dataclasses.replace(
        s.final[0], mlp_removed=r, params_removed=r, loss=loss, ppl_ratio=ratio
    )


def test_baseline_loss_is_the_stored_one_at_search_and_the_median_implied_one_at_final() -> None:
    s = _study()
    # the search stage trusts the stored figure even where the points imply another
    assert fit_study(dataclasses.replace(s, baseline_loss=2.7)).baseline_loss == 2.7
    good = [(2.0, 1.5), (2.1, 0.5), (2.2, 2.0), (9.0, 3.0)]  # (implied baseline, ppl ratio)
    bad = [(None, 1.2), (2.5, None), (math.inf, 1.2), (2.5, math.inf), (2.5, 0.0), (2.5, -1.0)]
    pts = [_final_point(s, 0.1 * i, b + math.log(q), q) for i, (b, q) in enumerate(good)]
    pts += [_final_point(s, 0.5 + 0.05 * i, loss, q) for i, (loss, q) in enumerate(bad)]
    final = dataclasses.replace(s, final=tuple(pts))
    assert fit_study(final, stage="final").baseline_loss == pytest.approx(2.15, abs=1e-12)
    # nothing to infer it from: the stored figure
    unusable = dataclasses.replace(s, baseline_loss=2.7, final=tuple(pts[4:]))
    assert fit_study(unusable, stage="final").baseline_loss == 2.7


def test_every_kind_of_slo_gets_its_limit_or_says_why_not() -> None:
    slos = (
        "ppl<1.6", "params<=60%", "mlp<=80%", "kl<0.5", "tasks>=90%", "tasks>=0.55",
        "arc_easy>=0.55", "hellaswag>=95%", "boolq>=0.5",
    )  # fmt: skip
    s = _study(slos=slos)
    s = dataclasses.replace(s, baseline_tasks={"arc_easy": 0.70, "piqa": 0.72})  # no hellaswag
    fits = fit_study(s)
    assert fits.baseline_loss is not None and fits.mean_acc and fits.retention
    q, p, arc = fits.loss_quadratic, fits.loss_power, fits.tasks["arc_easy"]
    bound = fits.baseline_loss + math.log(1.6)

    def na(slo: str, reason: str) -> MaxCompression:
        return MaxCompression(slo, "-", "n/a", reason=reason)

    assert fits.limits == (
        max_compression(q, bound, upper=True, slo="ppl<1.6"),
        max_compression(p, bound, upper=True, slo="ppl<1.6"),
        na(
            "params<=60%",
            "a size bound: it asks for at least 40% of the parameters removed, no maximum",
        ),
        na(
            "mlp<=80%",
            "a size bound: it asks for at least 20% of the MLP parameters removed, no maximum",
        ),
        na("kl<0.5", "KL divergence is not fitted"),
        max_compression(fits.retention, 0.9, upper=False, slo="tasks>=90%"),
        max_compression(fits.mean_acc, 0.55, upper=False, slo="tasks>=0.55"),
        max_compression(arc, 0.55, upper=False, slo="arc_easy>=0.55"),
        na("hellaswag>=95%", "no baseline for hellaswag"),
        na("boolq>=0.5", "task boolq was not measured"),
    )
    # the power-law limit against its closed form: L0·(1 + r)^β = bound
    root = (bound / p.value("L0")) ** (1 / p.value("beta")) - 1
    assert fits.limits[1].status == "limit" and fits.limits[1].r == pytest.approx(root, abs=1e-9)
    none = fit_study(_study(tasks={}, slos=("tasks>=90%",)))
    assert none.limits == (na("tasks>=90%", "no task was measured"),)


def test_fit_uses_the_final_figures_when_there_are_any() -> None:
    s = _study()
    assert fit(s) == fit_study(s, stage="final") and fit(s).x == "mlp"
    assert fit(s, x="params") == fit_study(s, x="params", stage="final")
    assert fit(s, all_trials=True) == fit_study(s)
    assert fit(s, x="params", all_trials=True) == fit_study(s, x="params")
    no_final = dataclasses.replace(s, final=())
    assert fit(no_final) == fit_study(no_final) and fit(no_final).stage == "search"
