from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest

from frontier.compare import COMPARE_AT, compare, envelope, frontier_line, spearman
from frontier.errors import FrontierError
from frontier.study.summary import StudySummary
from frontier.testing import synthetic_summary


def _two() -> list[StudySummary]:
    a = synthetic_summary(name="study-a", model="model-a", n_trials=25)
    # model-b degrades half as fast on its tasks: it should win the frontier.
    b = synthetic_summary(
        name="study-b",
        model="model-b",
        n_trials=25,
        seed=1,
        loss_law=(3.0, 0.3, 1.2),
        tasks={"arc_easy": (0.6, 0.12), "piqa": (0.7, 0.14)},
    )
    return [a, b]


def test_compare_two_models(tmp_path: Path) -> None:
    a, b = _two()
    result = compare([a, b], tmp_path)
    assert result.markdown == tmp_path / "compare.md" and result.chart == tmp_path / "compare.png"
    assert result.chart.stat().st_size > 20_000
    h, w = matplotlib.image.imread(result.chart).shape[:2]
    assert h >= 400 and w >= 600
    assert result.ppl_fallback == ()

    ra, rb = result.rows
    assert (ra.label, rb.label) == ("model-a", "model-b")
    for row in (ra, rb):
        assert set(row.retention_at) == set(COMPARE_AT)
        assert row.retention_fit is not None and row.retention_fit.ok
        for r, value in row.retention_at.items():
            assert value == pytest.approx(float(row.retention_fit.predict([r])[0]))
        # perplexity and retention rank the synthetic trials alike: strongly negative
        assert row.spearman.rho is not None and row.spearman.rho < -0.8
        assert row.spearman.n >= 20
    # synthetic retention slopes: a ~ mean(0.45/0.70, 0.20/0.42, 0.25/0.72) = 0.49, b = 0.2
    assert ra.degradation_per_10pct == pytest.approx(0.049, abs=0.005)
    assert rb.degradation_per_10pct == pytest.approx(0.020, abs=0.005)
    assert rb.retention_at[0.3] > ra.retention_at[0.3]  # type: ignore[operator]
    assert ra.chosen_mlp_removed == pytest.approx(a.chosen.mlp_removed)  # type: ignore[union-attr]

    text = result.markdown.read_text()
    assert "](compare.png)" in text
    assert "| model-a | study-a |" in text and "| model-b | study-b |" in text
    assert "retained at 10%" in text and "lost per 10% removed" in text
    assert f"{100 * ra.retention_at[0.2]:.1f}%" in text  # type: ignore[operator]
    assert "ρ = " in text and "n=" in text
    assert result.describe().startswith("2 models compared")


def test_compare_falls_back_to_perplexity_without_tasks(tmp_path: Path) -> None:
    a, _ = _two()
    bare = synthetic_summary(name="bare", model="model-c", n_trials=20, tasks={}, slos=("ppl<1.5",))
    result = compare([a, bare], tmp_path)
    assert result.ppl_fallback == ("model-c",)
    row = result.rows[1]
    assert not row.has_tasks and row.degradation_per_10pct is None
    assert row.spearman.rho is None and "fewer than 3" in row.spearman.reason
    text = result.markdown.read_text()
    assert "No task figures for model-c" in text and "perplexity ratio" in text
    # two panels: retention for model-a, perplexity ratio for model-c
    assert matplotlib.image.imread(result.chart).shape[1] >= 1200


def test_same_model_twice_is_told_apart_by_study(tmp_path: Path) -> None:
    a = synthetic_summary(name="first", model="m", n_trials=10)
    b = synthetic_summary(name="second", model="m", n_trials=10, seed=3)
    labels = [r.label for r in compare([a, b], tmp_path).rows]
    assert labels == ["m (first)", "m (second)"]


def test_compare_needs_a_study(tmp_path: Path) -> None:
    with pytest.raises(FrontierError):
        compare([], tmp_path)


def test_spearman_and_envelope_helpers() -> None:
    s = spearman([1.0, 2.0, 3.0, 4.0], [0.9, 0.8, 0.7, 0.5])
    assert s.rho == pytest.approx(-1.0) and s.n == 4 and "ρ = -1.00" in s.describe()
    assert spearman([1.0, 2.0], [1.0, 2.0]).rho is None
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]).reason == "one of the two is constant"
    assert spearman([1.0, float("nan"), 2.0, 3.0], [3.0, 2.0, 1.0, 0.0]).n == 3
    pts = [(0.0, 100.0), (10.0, 90.0), (12.0, 95.0), (20.0, 80.0), (25.0, 70.0)]
    assert envelope(pts, higher_is_better=True) == [
        (0.0, 100.0),
        (12.0, 95.0),
        (20.0, 80.0),
        (25.0, 70.0),
    ]
    assert envelope([(0.0, 1.0), (10.0, 1.3), (12.0, 1.2)], higher_is_better=False) == [
        (0.0, 1.0),
        (12.0, 1.2),
    ]


def test_a_frontier_line_starts_at_the_unpruned_model() -> None:
    # a lightly pruned trial scored 106% by chance: the envelope alone would start there
    pts = [(0.0, 100.0), (5.0, 106.0), (20.0, 90.0)]
    assert envelope(pts, higher_is_better=True)[0] == (5.0, 106.0)
    assert frontier_line(pts, higher_is_better=True) == [(0.0, 100.0), (5.0, 106.0), (20.0, 90.0)]
    plain = [(0.0, 100.0), (10.0, 90.0)]
    assert frontier_line(plain, higher_is_better=True) == plain
