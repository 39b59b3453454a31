"""Paired intervals on retention and accuracy: coverage on simulated data, and their edges."""

from __future__ import annotations

import math
import random

import pytest

from frontier.errors import FrontierError
from frontier.stats import (
    accuracy_interval,
    near_chance,
    retention_interval,
    z_value,
)

# Joint probabilities of (pruned right, unpruned right) per document:
# both, pruned only, unpruned only, neither.
CELLS = {
    "retains 90%": (0.50, 0.04, 0.10, 0.36),  # pruned 0.54, unpruned 0.60
    "retains 75%, weak model": (0.15, 0.03, 0.09, 0.73),  # 0.18 / 0.24
    "retains all": (0.55, 0.05, 0.05, 0.35),  # 0.60 / 0.60
}


def _paired(
    cells: tuple[float, ...], n: int, rng: random.Random
) -> tuple[list[float], list[float]]:
    outcomes = [(1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.0, 0.0)]
    pairs = rng.choices(outcomes, weights=cells, k=n)
    return [p for p, _ in pairs], [b for _, b in pairs]


@pytest.mark.parametrize("case", sorted(CELLS))
@pytest.mark.parametrize("n", [40, 200])
def test_retention_interval_covers_the_true_retention_at_its_level(case: str, n: int) -> None:
    cells = CELLS[case]
    truth = (cells[0] + cells[1]) / (cells[0] + cells[2])
    rng = random.Random(f"{case}:{n}")  # a seed that does not depend on PYTHONHASHSEED
    reps, covered, above, below = 2000, 0, 0, 0
    for _ in range(reps):
        pruned, base = _paired(cells, n, rng)
        ci = retention_interval(pruned, base, 0.9)
        covered += ci.low <= truth <= ci.high
        above += ci.low > truth
        below += ci.high < truth
    # nominal 90%: at least 87% (binomial noise of 2000 draws is ~0.7%); with few
    # discordant documents (40 documents) the added pseudo-pairs make it conservative,
    # with many (200) it is close to nominal
    upper = 0.95 if n == 200 else 0.99
    assert 0.87 <= covered / reps <= upper, (covered / reps, above, below)
    # each one-sided miss (what a wrong floor verdict needs) stays near 5%
    assert above / reps <= 0.075 and below / reps <= 0.075


def test_accuracy_interval_covers_the_true_accuracy() -> None:
    rng = random.Random(7)
    reps, covered = 2000, 0
    for _ in range(reps):
        scores = [float(rng.random() < 0.3) for _ in range(60)]
        ci = accuracy_interval(scores, 0.9)
        covered += ci.low <= 0.3 <= ci.high
    assert 0.87 <= covered / reps <= 0.96


def test_a_few_documents_that_all_agree_cannot_prove_a_floor() -> None:
    ci = retention_interval([1.0] * 5, [1.0] * 5, 0.9)
    assert ci.estimate == 1.0
    assert ci.low < 0.9 < 1.0 < ci.high  # five documents: a 90% floor stays open
    many = retention_interval([1.0] * 500, [1.0] * 500, 0.9)
    assert many.low > 0.99  # five hundred: it is proved


def test_only_discordant_documents_widen_the_interval() -> None:
    same = retention_interval([1.0] * 50 + [0.0] * 50, [1.0] * 50 + [0.0] * 50, 0.9)
    # the same accuracy (50%), but 20 documents flipped each way
    flipped = retention_interval(
        [1.0] * 30 + [0.0] * 20 + [1.0] * 20 + [0.0] * 30,
        [1.0] * 30 + [1.0] * 20 + [0.0] * 20 + [0.0] * 30,
        0.9,
    )
    assert same.estimate == flipped.estimate == 1.0
    assert (flipped.high - flipped.low) > 3 * (same.high - same.low)


def test_the_interval_matches_the_discordant_count_formula() -> None:
    # a = both right, b = pruned only, c = unpruned only: var = (b+c+2)/((a+b+1)(a+c+1))
    a, b, c, d = 40, 6, 14, 40
    pruned = [1.0] * (a + b) + [0.0] * (c + d)
    base = [1.0] * a + [0.0] * b + [1.0] * c + [0.0] * d
    ci = retention_interval(pruned, base, 0.95)
    centre = (a + b + 1) / (a + c + 1)
    half = z_value(0.95) * math.sqrt((b + c + 2) / ((a + b + 1) * (a + c + 1)))
    assert ci.estimate == pytest.approx((a + b) / (a + c))
    assert ci.low == pytest.approx(centre * math.exp(-half))
    assert ci.high == pytest.approx(centre * math.exp(half))
    assert ci.n == 100 and ci.confidence == 0.95
    acc = accuracy_interval(pruned, 0.8)
    assert acc.n == 100 and acc.confidence == 0.8 and acc.estimate == pytest.approx(0.46)
    # adjusted Wald: one 1 and one 0 added (3 of 10 right -> 4 of 12), clipped to [0, 1]
    three = accuracy_interval([1.0] * 3 + [0.0] * 7, 0.9)
    half = z_value(0.9) * math.sqrt((4 / 12) * (8 / 12) / 12)
    assert (three.low, three.high) == pytest.approx((4 / 12 - half, 4 / 12 + half))
    assert accuracy_interval([1.0] * 3, 0.9).high == 1.0
    with pytest.raises(FrontierError, match=r"^no documents for the accuracy interval$"):
        accuracy_interval([], 0.9)


def test_continuous_scores_are_accepted_and_zero_baseline_has_no_estimate() -> None:
    ci = retention_interval([0.2, 0.4, 0.9], [0.3, 0.5, 0.8], 0.9)
    assert ci.low < ci.estimate < ci.high
    zero = retention_interval([0.0, 1.0], [0.0, 0.0], 0.9)
    assert math.isnan(zero.estimate) and 0 < zero.low < zero.high


@pytest.mark.parametrize(
    ("pruned", "base", "confidence", "message"),
    [
        ([1.0], [1.0, 0.0], 0.9, "differ in length: 1 and 2"),
        ([], [], 0.9, "^no documents for the retention interval$"),
        ([1.0], [], 0.9, "differ in length"),
        ([1.5], [1.0], 0.9, "^retention scores must lie in \\[0, 1\\]$"),
        ([1.0], [-0.5], 0.9, "^retention scores must lie in \\[0, 1\\]$"),
        ([1.0], [1.0], 1.0, "confidence must be in \\(0, 1\\), got 1.0"),
        ([1.0], [1.0], 0.0, "confidence must be in"),
    ],
)
def test_bad_input_is_a_one_line_error(
    pruned: list[float], base: list[float], confidence: float, message: str
) -> None:
    with pytest.raises(FrontierError, match=message):
        retention_interval(pruned, base, confidence)


def test_near_chance_is_two_standard_errors_of_chance() -> None:
    # the accuracy's own SE: 100 documents at 0.336 -> sqrt(.336 * .664 / 100) = 0.0472
    assert near_chance(0.25, 0.25, 100)
    assert near_chance(0.336, 0.25, 100)  # 0.086 < 2 * 0.0472
    assert not near_chance(0.35, 0.25, 100)  # 0.100 > 2 * 0.0477
    assert not near_chance(0.5, 0.25, 16)  # exactly two SEs (0.125 each) is not within
    assert near_chance(0.5, 0.25, 15)  # fewer documents: 0.25 < 2 * 0.129
    assert near_chance(0.10, 0.25, 100)  # below chance counts too
    assert not near_chance(0.30, 0.25, 2000)  # more documents: a smaller margin
    assert not near_chance(1.0, 0.01, 1)  # one document can be far from a tiny chance
    assert near_chance(0.9, 0.25, 0)  # no documents: nothing shows it is above chance


@pytest.mark.parametrize(
    ("confidence", "df", "table"),
    [
        (0.9, 7, 1.8946),
        (0.95, 1, 12.7062),
        (0.95, 2, 4.3027),
        (0.9, 30, 1.6973),
        (0.99, 10, 3.1693),
    ],
)
def test_t_value_is_students_quantile(confidence: float, df: int, table: float) -> None:
    from frontier.stats import t_value

    assert t_value(confidence, df) == pytest.approx(table, abs=1e-4)


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_the_log_ratio_interval_covers_the_true_ratio_at_its_level(n: int) -> None:
    """Simulated windows: each window's log ratio is the true one plus normal noise (the
    spread real windows show); the 90% interval covers exp(true) about 90% of the time."""
    from frontier.stats import log_ratio_interval

    rng = random.Random(n)
    true, reps, hit = math.log(1.7), 4000, 0
    for _ in range(reps):
        diffs = [true + rng.gauss(0.0, 0.08) for _ in range(n)]
        iv = log_ratio_interval(diffs, 0.9)
        assert iv is not None and iv.n == n and iv.low <= iv.estimate <= iv.high
        hit += iv.low <= math.exp(true) <= iv.high
    assert abs(hit / reps - 0.9) < 0.02
    assert log_ratio_interval([0.3]) is None  # one window: no spread to read


@pytest.mark.parametrize(("estimate", "n"), [(0.93, 133), (0.92, 532), (0.905, 1064)])
def test_the_predictive_pass_probability_is_what_the_rest_of_the_documents_give(
    estimate: float, n: int
) -> None:
    """Simulated: the truth drawn about the estimate (the flat prior's posterior), the
    documents left drawn about the truth, the interval on all of them computed; the share
    whose pessimistic end meets the floor is the predictive probability."""
    from frontier.stats import predictive_pass

    rng = random.Random(n)
    sigma, total, floor, level = 0.7, 2126, 0.9, 0.975
    z = z_value(level)
    low = estimate - z * sigma / math.sqrt(n)
    want = predictive_pass(estimate, low, floor, n, total, level)
    reps, hit = 20000, 0
    for _ in range(reps):
        truth = rng.gauss(estimate, sigma / math.sqrt(n))
        rest = rng.gauss(truth, sigma / math.sqrt(total - n))
        final = (n * estimate + (total - n) * rest) / total
        hit += final - z * sigma / math.sqrt(total) >= floor
    assert 0.02 < want < 0.98  # a case where the documents left matter
    assert abs(hit / reps - want) < 0.015


def test_the_predictive_pass_probability_at_its_edges() -> None:
    from frontier.stats import predictive_pass

    # all read: the verdict as it stands
    assert predictive_pass(0.95, 0.91, 0.9, 500, 500, 0.9) == 1.0
    assert predictive_pass(0.95, 0.89, 0.9, 500, 500, 0.9) == 0.0
    # far below the floor with most documents read: hopeless; far above: sure
    assert predictive_pass(0.80, 0.75, 0.9, 1000, 2000, 0.9) < 1e-6
    assert predictive_pass(0.99, 0.96, 0.9, 100, 2000, 0.9) > 0.99
    # the same estimate is less hopeless on a first look than near the split's end
    early = predictive_pass(0.87, 0.80, 0.9, 133, 2126, 0.9)
    late = predictive_pass(0.87, 0.87 - 0.07 * math.sqrt(133 / 1064), 0.9, 1064, 2126, 0.9)
    assert late < early < 0.5
