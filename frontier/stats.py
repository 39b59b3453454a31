"""Paired statistics for task floors: intervals on retention and decisions with a stated confidence.

A task's figures for the pruned and the unpruned model come from the *same* documents, so
each document is a pair (pruned score, unpruned score), each in [0, 1] (1/0 for an accuracy
metric). Retention is the ratio of the two means; its interval here is an adjusted Wald
interval on the log ratio:

- two discordant pseudo-pairs, (1, 0) and (0, 1), are added to the documents (for 0/1 scores
  this is adding one to each discordant count, which keeps the interval finite and honest
  when a handful of documents all agree);
- the variance of the log ratio is the delta method's, from the pairs' own moments:
  ``(v_p / m_p^2 + v_b / m_b^2 - 2 c_pb / (m_p m_b)) / n``; for 0/1 scores this is
  ``(b + c) / ((a + b)(a + c))`` with ``a`` documents both got right and ``b``, ``c`` the
  discordant counts, so only the documents the two models disagree on widen it;
- the interval is ``ratio * exp(-+ z sqrt(var))`` with ``z`` the normal quantile of the
  two-sided ``confidence``.

Its coverage is checked by simulation in ``tests/frontier/test_stats.py``.

A floor ``retention >= r`` is then decided three ways (:meth:`frontier.study.SLO.decision`):
``pass`` when the whole interval lies at or above ``r``, ``fail`` when it lies below,
``undecided`` otherwise. Each wrong
verdict has probability at most about ``(1 - confidence) / 2``. The search rejects a trial
only on ``fail`` (a trial that might pass stays in); the final re-measurement chooses a
point only on ``pass``.

This module must not import torch or numpy: the CLI and the study read model use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from frontier.errors import FrontierError

__all__ = [
    "DEFAULT_CONFIDENCE",
    "FUTILITY",
    "Decision",
    "Interval",
    "accuracy_interval",
    "log_ratio_interval",
    "near_chance",
    "predictive_pass",
    "retention_interval",
    "t_value",
    "z_value",
]

#: The two-sided level of every interval, unless a study says otherwise (``--confidence``).
DEFAULT_CONFIDENCE = 0.9

Decision = Literal["pass", "fail", "undecided"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided ``confidence`` interval, from ``n`` documents."""

    estimate: float
    low: float
    high: float
    confidence: float
    n: int


def z_value(confidence: float) -> float:
    """The normal quantile of a two-sided ``confidence`` interval (0.9 -> 1.645)."""
    if not 0 < confidence < 1:
        raise FrontierError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _t_central(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` degrees of freedom, in closed form
    (Abramowitz and Stegun 26.7.3 and 26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:  # odd: 2/pi (theta + sin cos (1 + 2/3 cos^2 + 2.4/(3.5) cos^4 + ...))
        total, term = 0.0, math.cos(theta)
        for k in range(1, df - 1, 2):
            total += term
            term *= c2 * (k + 1) / (k + 2)
        return 2 / math.pi * (theta + s * total)
    total, term = 0.0, 1.0  # even: sin (1 + 1/2 cos^2 + 1.3/(2.4) cos^4 + ...)
    for k in range(1, df, 2):
        total += term
        term *= c2 * k / (k + 1)
    return s * total


def t_value(confidence: float, df: int) -> float:
    """Student's t quantile of a two-sided ``confidence`` interval with ``df`` degrees of
    freedom (``t_value(0.9, 7)`` = 1.895; the normal quantile as ``df`` grows)."""
    z = z_value(confidence)
    if df < 1:
        raise FrontierError(f"degrees of freedom must be at least 1, got {df}")
    low, high = z, z
    while _t_central(high, df) < confidence:
        high *= 2
    for _ in range(200):  # bisection to the float's resolution
        mid = (low + high) / 2
        if mid in (low, high):
            break
        low, high = (mid, high) if _t_central(mid, df) < confidence else (low, mid)
    return high


def log_ratio_interval(
    diffs: Sequence[float], confidence: float = DEFAULT_CONFIDENCE
) -> Interval | None:
    """A ratio ``exp(mean d)`` of paired measurements from their per-unit log differences
    ``d`` (a perplexity ratio: each window's mean token NLL, pruned less unpruned, on equal
    windows), with the Student t interval ``exp(mean d -+ t sd / sqrt(n))`` over the units.
    None for fewer than two units (no spread to read)."""
    n = len(diffs)
    if n < 2:
        return None
    m = _mean(diffs)
    sd = math.sqrt(sum((d - m) ** 2 for d in diffs) / (n - 1))
    half = t_value(confidence, n - 1) * sd / math.sqrt(n)
    return Interval(_exp(m), _exp(m - half), _exp(m + half), confidence, n)


def _exp(x: float) -> float:
    return math.exp(x) if x < 700 else math.inf


def _check(scores: Sequence[float], what: str) -> None:
    if not scores:
        raise FrontierError(f"no documents for the {what} interval")
    if any(not 0.0 <= s <= 1.0 for s in scores):
        raise FrontierError(f"{what} scores must lie in [0, 1]")


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def retention_interval(
    pruned: Sequence[float], base: Sequence[float], confidence: float = DEFAULT_CONFIDENCE
) -> Interval:
    """Retention (mean pruned score / mean unpruned score) on paired documents, with its
    interval (see the module's text). The estimate is the plain ratio of the means (NaN
    where the unpruned model scored 0 on every document); the interval is still defined."""
    if len(pruned) != len(base):
        raise FrontierError(f"paired scores differ in length: {len(pruned)} and {len(base)}")
    _check(pruned, "retention")
    _check(base, "retention")
    z = z_value(confidence)
    mb = _mean(base)
    estimate = _mean(pruned) / mb if mb > 0 else math.nan
    x = [*pruned, 1.0, 0.0]
    y = [*base, 0.0, 1.0]
    n = len(x)
    m1, m2 = _mean(x), _mean(y)
    v1 = _mean([(a - m1) ** 2 for a in x])
    v2 = _mean([(b - m2) ** 2 for b in y])
    c12 = _mean([(a - m1) * (b - m2) for a, b in zip(x, y, strict=True)])
    var = max((v1 / m1**2 + v2 / m2**2 - 2 * c12 / (m1 * m2)) / n, 0.0)
    centre, half = m1 / m2, z * math.sqrt(var)
    return Interval(estimate, centre * math.exp(-half), centre * math.exp(half), confidence, n - 2)


def accuracy_interval(scores: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """The mean score with an adjusted Wald interval (one 1 and one 0 added), in [0, 1]."""
    _check(scores, "accuracy")
    z = z_value(confidence)
    x = [*scores, 1.0, 0.0]
    m = _mean(x)
    half = z * math.sqrt(_mean([(a - m) ** 2 for a in x]) / len(x))
    return Interval(_mean(scores), max(0.0, m - half), min(1.0, m + half), confidence, len(scores))


def near_chance(accuracy: float, chance: float, n: int) -> bool:
    """Whether ``accuracy`` on ``n`` documents is within two of its standard errors
    (``sqrt(acc (1 - acc) / n)``) of ``chance``, or below it: the one rule for the study's
    warning and the report's "how fine the task figures are" table."""
    if n < 1:
        return True
    se = math.sqrt(max(accuracy * (1 - accuracy), 1e-12) / n)
    return accuracy - chance < 2 * se


#: The final stage stops reading a candidate's documents when the predictive probability
#: that they decide a floor as met falls below this (:func:`predictive_pass`).
FUTILITY = 0.02


def predictive_pass(
    estimate: float, low: float, floor: float, n: int, total: int, confidence: float
) -> float:
    """The predictive probability that a lower ``floor``, read on an interval with
    ``estimate`` and pessimistic end ``low`` at the two-sided ``confidence`` on ``n``
    documents, is met once all ``total`` documents are read (``n`` and ``total`` equal:
    1.0 or 0.0, the verdict as it stands).

    The spread per document is taken from the interval now (``estimate - low``, shrinking
    as one over the square root of the documents). With a flat prior the truth is normal
    about ``estimate`` with the spread of ``n`` documents, so the estimate on all ``total``
    is normal about ``estimate`` with variance ``sigma^2 (total - n) / (total n)``; the
    floor is met at the end when that estimate exceeds ``floor`` by the final half-width.
    An early look, whose estimate is itself uncertain, gives a probability near one half
    unless it is far from the floor.
    """
    half = max(estimate - low, 0.0)
    margin = estimate - floor - half * math.sqrt(n / total) if total > n else low - floor
    spread = 0.0
    if total > n:
        sigma = half * math.sqrt(n) / z_value(confidence)  # one document's spread
        spread = sigma * math.sqrt((total - n) / (total * n))
    if spread == 0:
        return float(margin >= 0)
    return NormalDist().cdf(margin / spread)
