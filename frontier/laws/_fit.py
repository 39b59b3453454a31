"""The fitting maths: three law forms, least squares with confidence intervals, SLO limits.

Pure numpy/scipy on arrays; :mod:`frontier.laws._study` applies them to a study.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

Form = Literal["quadratic", "power", "linear"]
Axis = Literal["mlp", "params"]
LimitStatus = Literal["limit", "always", "never", "unfit", "n/a"]
FloatArray = npt.NDArray[np.float64]

#: AIC differences below this are read as "no real preference" (Burnham & Anderson's rule).
AIC_TIE = 2.0
_CONFIDENCE = 0.95
_N_PARAMS: dict[str, int] = {"quadratic": 3, "power": 2, "linear": 2}
_NAMES: dict[str, tuple[str, ...]] = {
    "quadratic": ("L0", "a", "b"),
    "power": ("L0", "beta"),
    "linear": ("A0", "c"),
}


@dataclass(frozen=True)
class Coef:
    """One fitted coefficient with its standard error and 95% confidence interval."""

    name: str
    value: float
    stderr: float
    low: float
    high: float

    def describe(self) -> str:
        return f"{self.name} = {self.value:.4g} ± {(self.high - self.low) / 2:.2g}"


@dataclass(frozen=True)
class FitResult:
    """A fitted law, or why it could not be fitted (``ok=False``, ``reason`` set).

    ``target`` names what was fitted (``loss``, a task name, ``mean_acc``,
    ``retention``); ``x`` the fraction on the r axis. ``r_range`` is the span of the data:
    a prediction outside it is an extrapolation.
    """

    form: Form
    target: str
    x: Axis
    ok: bool
    n: int
    reason: str | None = None
    coefs: tuple[Coef, ...] = ()
    r2: float | None = None
    aic: float | None = None
    r_range: tuple[float, float] | None = None
    note: str | None = None  # e.g. points dropped before fitting

    def coef(self, name: str) -> Coef:
        for c in self.coefs:
            if c.name == name:
                return c
        raise KeyError(f"{self.form} fit has no coefficient {name!r}")

    def value(self, name: str) -> float:
        return self.coef(name).value

    def predict(self, r: npt.ArrayLike) -> FloatArray:
        if not self.ok:
            raise ValueError(f"cannot predict from a failed fit: {self.reason}")
        return _MODELS[self.form](np.asarray(r, dtype=float), *(c.value for c in self.coefs))

    def describe(self) -> str:
        head = f"{self.form} fit of {self.target} vs {self.x} removed"
        if not self.ok:
            return f"{head}: not fitted ({self.reason})"
        coefs = ", ".join(c.describe() for c in self.coefs)
        assert self.r2 is not None and self.aic is not None
        return f"{head} (n={self.n}): {coefs}; R² = {self.r2:.3f}, AIC = {self.aic:.1f}"


@dataclass(frozen=True)
class MaxCompression:
    """The largest fraction removed at which a fitted curve still meets an SLO.

    ``status``: ``limit`` (met on [0, r], broken just past r), ``always`` (met on all of
    [0, 1): the fit sets no limit; ``r`` is None), ``never`` (not met even at r = 0;
    ``r`` is None), ``unfit`` (the fit failed) or ``n/a`` (the fit says nothing about
    this SLO). ``extrapolated`` marks an r beyond the largest r in the data.
    """

    slo: str
    fit: str  # "<form> <target>"
    status: LimitStatus
    r: float | None = None
    extrapolated: bool = False
    reason: str = ""

    def describe(self) -> str:
        if self.status == "limit":
            assert self.r is not None
            extra = " (extrapolated beyond the data)" if self.extrapolated else ""
            return f"{self.slo}: met up to {100 * self.r:.1f}% removed by the {self.fit} fit{extra}"
        return f"{self.slo} ({self.fit}): {self.status}: {self.reason}"


# -- the model functions ----------------------------------------------------------------
def _quadratic(r: FloatArray, l0: float, a: float, b: float) -> FloatArray:
    return l0 + a * r + b * r * r


def _power(r: FloatArray, l0: float, beta: float) -> FloatArray:
    return l0 * np.power(1.0 + r, beta)


def _linear(r: FloatArray, a0: float, c: float) -> FloatArray:
    return a0 - c * r


_MODELS: dict[str, Callable[..., FloatArray]] = {
    "quadratic": _quadratic,
    "power": _power,
    "linear": _linear,
}


# -- fitting ------------------------------------------------------------------------------
def _check(
    form: Form, target: str, x: Axis, r: FloatArray, y: FloatArray
) -> tuple[FitResult | None, int]:
    """A failed FitResult if (r, y) cannot identify ``form``'s parameters, else None."""
    k = _N_PARAMS[form]
    n = int(r.size)

    def fail(reason: str) -> tuple[FitResult, int]:
        return FitResult(form=form, target=target, x=x, ok=False, n=n, reason=reason), k

    if r.shape != y.shape:
        return fail(f"{r.size} r values for {y.size} {target} values")
    bad = int(np.sum(~np.isfinite(r)) + np.sum(~np.isfinite(y)))
    if bad:
        return fail(f"{bad} non-finite value(s) (NaN or inf) in r or {target}")
    if n < k + 1:
        # k parameters plus at least one residual degree of freedom for an uncertainty.
        return fail(f"{n} point(s); a {form} fit needs at least {k + 1}")
    distinct = np.unique(r).size
    if distinct == 1:
        return fail(f"all r equal ({r[0]:.4g}): no spread to fit a curve")
    if distinct < k:
        return fail(f"only {distinct} distinct r values; a {form} fit needs {k}")
    if np.ptp(y) == 0:
        return fail(f"{target} is constant ({y[0]:.4g}): zero variance, R² undefined")
    return None, k


def _finish(
    form: Form,
    target: str,
    x: Axis,
    r: FloatArray,
    y: FloatArray,
    params: FloatArray,
    cov: FloatArray,
    note: str | None,
) -> FitResult:
    n, k = r.size, params.size
    dof = n - k
    resid = y - _MODELS[form](r, *params)
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    if not np.all(np.isfinite(cov)):
        return FitResult(
            form=form, target=target, x=x, ok=False, n=n, reason="covariance is not finite"
        )
    t = float(stats.t.ppf(0.5 + _CONFIDENCE / 2, dof))
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    coefs = tuple(
        Coef(name, float(v), float(s), float(v - t * s), float(v + t * s))
        for name, v, s in zip(_NAMES[form], params, se, strict=True)
    )
    # Gaussian-likelihood AIC with the variance as one more parameter. An exact fit has
    # RSS 0 and log 0 = -inf; the floor keeps AIC finite and comparable between forms.
    floor = n * np.finfo(float).tiny
    aic = n * math.log(max(rss, floor) / n) + 2 * (k + 1)
    return FitResult(
        form=form,
        target=target,
        x=x,
        ok=True,
        n=n,
        coefs=coefs,
        r2=1.0 - rss / tss,
        aic=aic,
        r_range=(float(r.min()), float(r.max())),
        note=note,
    )


def _as_arrays(r: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    return np.asarray(r, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()


def _fit_ols(
    form: Form,
    columns: Callable[[FloatArray], FloatArray],
    r_in: npt.ArrayLike,
    y_in: npt.ArrayLike,
    target: str,
    x: Axis,
    note: str | None,
    sign: FloatArray,
) -> FitResult:
    r, y = _as_arrays(r_in, y_in)
    failed, k = _check(form, target, x, r, y)
    if failed is not None:
        return failed
    design = columns(r)
    beta, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < k:
        return FitResult(
            form=form, target=target, x=x, ok=False, n=r.size, reason="design matrix is singular"
        )
    resid = y - design @ beta
    s2 = float(resid @ resid) / (r.size - k)
    cov = s2 * np.linalg.inv(design.T @ design)
    # ``sign`` maps the design's coefficients onto the published parameters (A0 − c·r).
    params = beta * sign
    cov = cov * np.outer(sign, sign)
    return _finish(form, target, x, r, y, params, cov, note)


def fit_quadratic(
    r: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    target: str = "loss",
    x: Axis = "mlp",
    note: str | None = None,
) -> FitResult:
    """L(r) = L0 + a·r + b·r² by least squares; coefficients ``L0``, ``a``, ``b``."""
    return _fit_ols(
        "quadratic",
        lambda v: np.column_stack([np.ones_like(v), v, v * v]),
        r,
        y,
        target,
        x,
        note,
        np.array([1.0, 1.0, 1.0]),
    )


def fit_linear(
    r: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    target: str = "accuracy",
    x: Axis = "mlp",
    note: str | None = None,
) -> FitResult:
    """A(r) = A0 − c·r by least squares; ``c`` > 0 means accuracy falls as r grows."""
    return _fit_ols(
        "linear",
        lambda v: np.column_stack([np.ones_like(v), v]),
        r,
        y,
        target,
        x,
        note,
        np.array([1.0, -1.0]),
    )


def fit_power(
    r: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    target: str = "loss",
    x: Axis = "mlp",
    note: str | None = None,
) -> FitResult:
    """L(r) = L0·(1 + r)^β by nonlinear least squares; coefficients ``L0``, ``beta``."""
    rr, yy = _as_arrays(r, y)
    failed, _ = _check("power", target, x, rr, yy)
    if failed is not None:
        return failed
    # Start from the log-log line when the data allow it: log L = log L0 + β·log(1 + r).
    if np.all(yy > 0):
        slope, intercept = np.polyfit(np.log1p(rr), np.log(yy), 1)
        p0 = [math.exp(intercept), slope]
    else:
        p0 = [float(yy[np.argmin(rr)]) or 1.0, 1.0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", optimize.OptimizeWarning)
            params, cov = optimize.curve_fit(_power, rr, yy, p0=p0, maxfev=10_000)
    except (RuntimeError, optimize.OptimizeWarning, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return FitResult(
            form="power",
            target=target,
            x=x,
            ok=False,
            n=rr.size,
            reason=f"nonlinear least squares failed: {first}",
        )
    return _finish("power", target, x, rr, yy, np.asarray(params), np.asarray(cov), note)


# -- SLO limits ---------------------------------------------------------------------------
def max_compression(
    fit: FitResult,
    bound: float,
    *,
    upper: bool,
    slo: str = "",
    hi: float = 1.0,
) -> MaxCompression:
    """The largest r such that the fitted curve meets the bound on all of [0, r].

    ``upper``: the curve must stay at or below ``bound`` (loss); otherwise at or above
    (accuracy). The first crossing is what matters, not the last: a fitted quadratic that
    turns back down past its peak does not make a broken model work again. Found by
    bracketing on a fine grid, then Brent's method.
    """
    label = f"{fit.form} {fit.target}"
    if not fit.ok:
        return MaxCompression(slo, label, "unfit", reason=fit.reason or "fit failed")

    def margin(r: float) -> float:
        value = float(fit.predict(np.array([r]))[0])
        return bound - value if upper else value - bound

    if margin(0.0) < 0:
        return MaxCompression(
            slo, label, "never", reason="the fitted curve misses it even with nothing removed"
        )
    grid = np.linspace(0.0, hi, 4001)
    values = fit.predict(grid)
    margins = bound - values if upper else values - bound
    broken = np.nonzero(margins < 0)[0]
    if broken.size == 0:
        return MaxCompression(
            slo, label, "always", reason="the fitted curve meets it for every fraction removed"
        )
    i = int(broken[0])
    root = float(optimize.brentq(margin, grid[i - 1], grid[i], xtol=1e-12))
    hi_data = fit.r_range[1] if fit.r_range is not None else hi
    return MaxCompression(slo, label, "limit", r=root, extrapolated=root > hi_data)
