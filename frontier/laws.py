"""Compression laws: how loss and accuracy move with the fraction removed, fitted to trials.

Three forms, in ``r`` = fraction removed (of the MLP parameters by default):

* ``quadratic``  L(r) = L0 + a·r + b·r²        ordinary least squares
* ``power``      L(r) = L0·(1 + r)^β            the compression-laws form (arXiv 2504.04342),
                                                 nonlinear least squares
* ``linear``     A(r) = A0 − c·r                 per task accuracy, mean accuracy, retention

Every fit reports its coefficients with 95% confidence intervals (t-distribution on the
residual degrees of freedom), R² and AIC. From a fit and an SLO, :func:`max_compression`
gives the largest r up to which the fitted curve meets the SLO. A fit that cannot be made
(too few points, no spread in r, a constant or non-finite target, a failed optimiser) is a
:class:`FitResult` with ``ok=False`` and the reason, never numbers.

Pure numpy/scipy on stored numbers: no torch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from frontier.points import Stage, StudySummary, TrialPoint, mean_retention
from objectives.slo import SLO

__all__ = [
    "AIC_TIE",
    "Axis",
    "Coef",
    "FitResult",
    "Form",
    "LimitStatus",
    "MaxCompression",
    "StudyFits",
    "fit_linear",
    "fit_power",
    "fit_quadratic",
    "fit_study",
    "max_compression",
    "removed",
]

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


@dataclass(frozen=True)
class StudyFits:
    """Every law fitted to one study, and what each predicts for the study's SLOs."""

    x: Axis
    stage: Stage
    loss_quadratic: FitResult
    loss_power: FitResult
    tasks: Mapping[str, FitResult] = field(default_factory=dict)
    mean_acc: FitResult | None = None
    retention: FitResult | None = None
    limits: tuple[MaxCompression, ...] = ()
    baseline_loss: float | None = None

    @property
    def better_loss(self) -> Form | None:
        """The loss form with the lower AIC, None if either fit failed."""
        q, p = self.loss_quadratic, self.loss_power
        if not (q.ok and p.ok) or q.aic is None or p.aic is None:
            return None
        return "quadratic" if q.aic < p.aic else "power"

    def loss_verdict(self) -> str:
        """Which loss form fits better by AIC, in words."""
        q, p = self.loss_quadratic, self.loss_power
        if q.ok and p.ok and q.aic is not None and p.aic is not None:
            delta = abs(q.aic - p.aic)
            best = self.better_loss
            if delta < AIC_TIE:
                return f"quadratic and power law fit equally well (ΔAIC = {delta:.1f} < {AIC_TIE})"
            return f"{best} fits better (ΔAIC = {delta:.1f})"
        if q.ok or p.ok:
            good, bad = (q, p) if q.ok else (p, q)
            return f"only the {good.form} fit succeeded ({bad.form}: {bad.reason})"
        return f"neither loss fit succeeded ({q.reason}; {p.reason})"

    def describe(self) -> str:
        n_tasks = sum(f.ok for f in self.tasks.values())
        return (
            f"{self.stage} fits vs {self.x} removed: {self.loss_verdict()}; "
            f"{n_tasks}/{len(self.tasks)} task lines fitted; {len(self.limits)} SLO limits"
        )


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


def _loss_bound(slo: SLO, baseline_loss: float) -> float:
    # ppl ratio = exp(L − L_base), so ppl < t  <=>  L < L_base + ln t.
    return baseline_loss + math.log(slo.threshold)


def _limits_for(
    slo: SLO,
    fits: StudyFits,
    baseline_tasks: Mapping[str, float],
) -> list[MaxCompression]:
    text = str(slo)
    if slo.metric == "ppl":
        assert fits.baseline_loss is not None
        bound = _loss_bound(slo, fits.baseline_loss)
        return [
            max_compression(f, bound, upper=True, slo=text)
            for f in (fits.loss_quadratic, fits.loss_power)
        ]
    if slo.metric in ("params", "mlp"):
        return [
            MaxCompression(
                text,
                "-",
                "n/a",
                reason=(
                    f"a size bound: it asks for at least {100 - slo.threshold:.4g}% of the "
                    f"{'MLP ' if slo.metric == 'mlp' else ''}parameters removed, no maximum"
                ),
            )
        ]
    if slo.metric == "kl":
        return [MaxCompression(text, "-", "n/a", reason="KL divergence is not fitted")]
    if slo.metric == "tasks":
        fit = fits.retention if slo.relative else fits.mean_acc
        bound = slo.threshold / 100 if slo.relative else slo.threshold
        if fit is None:
            return [MaxCompression(text, "-", "n/a", reason="no task was measured")]
        return [max_compression(fit, bound, upper=False, slo=text)]
    task_fit = fits.tasks.get(slo.metric)
    if task_fit is None:
        return [MaxCompression(text, "-", "n/a", reason=f"task {slo.metric} was not measured")]
    if slo.relative:
        base = baseline_tasks.get(slo.metric)
        if base is None:
            return [MaxCompression(text, "-", "n/a", reason=f"no baseline for {slo.metric}")]
        return [max_compression(task_fit, slo.threshold / 100 * base, upper=False, slo=text)]
    return [max_compression(task_fit, slo.threshold, upper=False, slo=text)]


# -- a whole study ------------------------------------------------------------------------
def removed(point: TrialPoint, x: Axis) -> float:
    """The point's fraction removed on axis ``x``."""
    return point.mlp_removed if x == "mlp" else point.params_removed


def _series(
    points: Sequence[TrialPoint], x: Axis, value: Callable[[TrialPoint], float | None]
) -> tuple[FloatArray, FloatArray, str | None]:
    """(r, y) over points where ``value`` is measured and finite; a note on what was dropped.

    Unmeasured (None) values are simply absent; non-finite ones (a broken model's loss)
    are dropped and counted, since one inf would otherwise sink the whole fit.
    """
    rs: list[float] = []
    ys: list[float] = []
    dropped = 0
    for p in points:
        v = value(p)
        if v is None:
            continue
        if not math.isfinite(v):
            dropped += 1
            continue
        rs.append(removed(p, x))
        ys.append(v)
    note = f"{dropped} point(s) with a non-finite value left out" if dropped else None
    return np.array(rs, dtype=float), np.array(ys, dtype=float), note


def _task_accuracy(task: str) -> Callable[[TrialPoint], float | None]:
    return lambda p: p.tasks.get(task)


def _mean_acc(point: TrialPoint, names: Sequence[str]) -> float | None:
    if not names or any(t not in point.tasks for t in names):
        return None
    return sum(point.tasks[t] for t in names) / len(names)


def _baseline_loss_for(summary: StudySummary, points: Sequence[TrialPoint], stage: Stage) -> float:
    """The unpruned loss on the same text as ``points``' loss.

    Final points are on held-out text, whose unpruned loss follows from any final point
    as ``loss − ln(ppl ratio)``; the median guards against rounding in stored figures.
    """
    if stage == "search":
        return summary.baseline_loss
    implied = [
        p.loss - math.log(p.ppl_ratio)
        for p in points
        if p.loss is not None
        and p.ppl_ratio is not None
        and math.isfinite(p.loss)
        and math.isfinite(p.ppl_ratio)
        and p.ppl_ratio > 0
    ]
    return float(np.median(implied)) if implied else summary.baseline_loss


def _baseline_point(summary: StudySummary, full: tuple[int, ...]) -> TrialPoint:
    return TrialPoint(
        number=-1,
        mlp_removed=0.0,
        params_removed=0.0,
        loss=summary.baseline_loss,
        ppl_ratio=1.0,
        tasks=summary.baseline_tasks,
        feasible=True,
        pareto=False,
        chosen=False,
        widths=full,
        full=full,
        stage="search",
    )


def fit_study(
    summary: StudySummary,
    *,
    x: Axis = "mlp",
    stage: Stage = "search",
    include_baseline: bool = True,
) -> StudyFits:
    """Fit every law to a study's points and solve each SLO for its largest compression.

    ``stage="search"`` uses every trial's search-time figures (many points, the SLOs'
    own text); ``"final"`` the report-fidelity re-measurements of the Pareto set.
    ``include_baseline`` adds the unpruned model as the point r = 0 (search stage only:
    it was measured on the search text and documents). Samplers rarely propose r near 0,
    and without it the intercepts, which the SLO bounds are relative to, float free.
    """
    points: tuple[TrialPoint, ...] = summary.points if stage == "search" else summary.final
    base_loss = _baseline_loss_for(summary, points, stage)
    base_tasks = (
        summary.baseline_tasks_final
        if stage == "final" and summary.baseline_tasks_final
        else summary.baseline_tasks
    )
    if include_baseline and stage == "search" and points:
        points = (_baseline_point(summary, points[0].full), *points)

    r, y, note = _series(points, x, lambda p: p.loss)
    quad = fit_quadratic(r, y, target="loss", x=x, note=note)
    power = fit_power(r, y, target="loss", x=x, note=note)

    tasks: dict[str, FitResult] = {}
    for task in summary.task_names:
        r, y, note = _series(points, x, _task_accuracy(task))
        tasks[task] = fit_linear(r, y, target=task, x=x, note=note)

    names = sorted(t for t, b in base_tasks.items() if b > 0)
    mean_acc = ret = None
    if names:
        r, y, note = _series(points, x, lambda p: _mean_acc(p, names))
        mean_acc = fit_linear(r, y, target="mean_acc", x=x, note=note)
        r, y, note = _series(points, x, lambda p: mean_retention(p, base_tasks))
        ret = fit_linear(r, y, target="retention", x=x, note=note)

    fits = StudyFits(
        x=x,
        stage=stage,
        loss_quadratic=quad,
        loss_power=power,
        tasks=tasks,
        mean_acc=mean_acc,
        retention=ret,
        baseline_loss=base_loss,
    )
    limits = [lim for slo in summary.parsed_slos() for lim in _limits_for(slo, fits, base_tasks)]
    return replace(fits, limits=tuple(limits))


def fit(summary: StudySummary, *, x: Axis = "mlp", all_trials: bool = False) -> StudyFits:
    """``frontier fit``: :func:`fit_study` on the Pareto set's held-out figures, or on
    every trial's search-time figures where ``all_trials`` or nothing was re-measured."""
    stage: Stage = "search" if all_trials or not summary.final else "final"
    return fit_study(summary, x=x, stage=stage)
