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

Pure numpy/scipy on stored numbers: no torch. ``_fit`` holds the maths (arrays in, a
:class:`FitResult` out); ``_study`` fits a whole :class:`~frontier.study.summary.StudySummary`
(:func:`fit_study`).
"""

from frontier.laws._fit import (
    AIC_TIE,
    Axis,
    Coef,
    FitResult,
    Form,
    LimitStatus,
    MaxCompression,
    fit_linear,
    fit_power,
    fit_quadratic,
    max_compression,
)
from frontier.laws._study import StudyFits, fit, fit_study, removed

__all__ = [
    "AIC_TIE",
    "Axis",
    "Coef",
    "FitResult",
    "Form",
    "LimitStatus",
    "MaxCompression",
    "StudyFits",
    "fit",
    "fit_linear",
    "fit_power",
    "fit_quadratic",
    "fit_study",
    "max_compression",
    "removed",
]
