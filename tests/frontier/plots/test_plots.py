from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib.image
import pytest

from frontier.errors import FrontierError
from frontier.laws import fit_study
from frontier.plots import (
    breaking_points,
    plot_fits,
    plot_pareto,
    plot_retention,
    plot_widths,
    subtitle,
    task_label,
    text_label,
)
from frontier.study.summary import StudySummary
from frontier.testing import synthetic_summary


@pytest.fixture(scope="module")
def study() -> StudySummary:
    return synthetic_summary(n_trials=30)


def _check_png(path: Path, *, min_width: int = 500) -> tuple[int, int]:
    assert path.exists() and path.suffix == ".png"
    assert path.stat().st_size > 20_000  # a blank canvas is a few kB
    img = matplotlib.image.imread(path)
    h, w = img.shape[:2]
    assert h >= 400 and w >= min_width
    return h, w


def test_pareto_has_two_panels_with_tasks_and_one_without(
    study: StudySummary, tmp_path: Path
) -> None:
    out = plot_pareto(study, tmp_path / "pareto.png")
    assert out == tmp_path / "pareto.png"
    _, wide = _check_png(out)
    no_tasks = synthetic_summary(n_trials=30, tasks={}, slos=("ppl<1.6",), final=False)
    _, narrow = _check_png(plot_pareto(no_tasks, tmp_path / "sub" / "pareto1.png"))
    assert wide > 1.6 * narrow


def test_fits_plot(study: StudySummary, tmp_path: Path) -> None:
    _check_png(plot_fits(study, fit_study(study), tmp_path / "fits.png"), min_width=1000)


def test_fits_plot_survives_failed_fits(tmp_path: Path) -> None:
    tiny = synthetic_summary(n_trials=2, final=False)
    fits = fit_study(tiny, include_baseline=False)
    assert not fits.loss_quadratic.ok
    _check_png(plot_fits(tiny, fits, tmp_path / "fits.png"))


def test_widths_plot_and_its_absence(study: StudySummary, tmp_path: Path) -> None:
    _check_png(plot_widths(study, tmp_path / "widths.png"))
    nothing = dataclasses.replace(
        study,
        points=tuple(dataclasses.replace(p, chosen=False) for p in study.points),
        final=(),
    )
    with pytest.raises(FrontierError, match="no chosen point"):
        plot_widths(nothing, tmp_path / "none.png")


def test_retention_plot_orders_tasks_by_when_they_break(
    study: StudySummary, tmp_path: Path
) -> None:
    fits = fit_study(study)
    _check_png(plot_retention(study, fits, tmp_path / "retention.png"))
    breaks = breaking_points(study, fits)
    # arc_easy loses 0.45/0.70 of its accuracy per unit r, piqa only 0.25/0.72.
    assert breaks["arc_easy"] is not None and breaks["piqa"] is not None
    assert breaks["arc_easy"] < breaks["hellaswag"] < breaks["piqa"]  # type: ignore[operator]
    no_tasks = synthetic_summary(n_trials=10, tasks={}, slos=("ppl<1.6",))
    with pytest.raises(FrontierError, match="no task"):
        plot_retention(no_tasks, fit_study(no_tasks), tmp_path / "r.png")


def test_text_label_reads_the_protocol(study: StudySummary) -> None:
    assert text_label({"text": "my text"}) == "my text"
    assert text_label({"evaluation": {"source": "wiki", "role": "test"}}) == "wiki (test)"
    assert text_label({}) == "evaluation text not recorded"
    assert "wikitext" in subtitle(study) and study.model in subtitle(study)


def test_task_charts_name_their_task_data_not_the_text(study: StudySummary) -> None:
    label = task_label(study)
    assert "arc_easy" in label and "search documents" in label
    assert "wikitext" not in label.lower()
    proto = {**study.protocol, "tasks_search": {"tasks": ["arc_easy"], "docs": {"arc_easy": 40}}}
    assert "40 search documents" in task_label(dataclasses.replace(study, protocol=proto))


def test_retention_points_carry_their_confidence_bars(study: StudySummary, tmp_path: Path) -> None:
    fits = fit_study(study)
    plain = plot_retention(study, fits, tmp_path / "plain.png")
    banded_points = tuple(
        dataclasses.replace(
            p,
            retained={t: a / study.baseline_tasks[t] for t, a in p.tasks.items()},
            retained_ci={t: (0.5 * a / study.baseline_tasks[t], 1.0) for t, a in p.tasks.items()},
        )
        for p in study.points
    )
    banded = plot_retention(
        dataclasses.replace(study, points=banded_points), fits, tmp_path / "banded.png"
    )
    a, b = matplotlib.image.imread(plain), matplotlib.image.imread(banded)
    assert a.shape == b.shape and (a != b).mean() > 0.01  # the bars are drawn


def test_the_pareto_line_starts_at_the_unpruned_model(study: StudySummary) -> None:
    """Both Pareto panels draw the search-time front from (0% removed, unpruned) on, by
    fraction removed (issue 16: a frontier chart starts at the unpruned point)."""
    from frontier.plots._measured import front_line
    from frontier.study.summary import mean_retention

    xs, ys = front_line(study, lambda p: p.ppl_ratio, 1.0)
    pareto = sorted((p for p in study.points if p.pareto), key=lambda p: p.mlp_removed)
    assert (xs[0], ys[0]) == (0.0, 1.0) and len(xs) == len(pareto) + 1 > 2
    assert xs[1:] == [100 * p.mlp_removed for p in pareto] and xs == sorted(xs)
    assert ys[1:] == [p.ppl_ratio for p in pareto]

    def kept(p):  # type: ignore[no-untyped-def]
        r = mean_retention(p, study.baselines_for(p))
        return None if r is None else 100 * r

    xs, ys = front_line(study, kept, 100.0)
    assert (xs[0], ys[0]) == (0.0, 100.0) and all(y is not None for y in ys)


def test_intervals_are_drawn_over_the_points_that_have_one() -> None:
    """A bar per point with a finite interval, spanning it; none for the others."""
    from matplotlib.figure import Figure

    from frontier.plots import draw_intervals

    class P:
        def __init__(self, removed: float, v: float, ci: tuple[float, float] | None) -> None:
            self.mlp_removed, self.v, self.ci = removed, v, ci

    pts = [P(0.3, 1.5, (1.4, 1.7)), P(0.4, 1.8, None), P(0.5, 2.1, (1.9, float("inf")))]
    ax = Figure().subplots()
    draw_intervals(ax, pts, lambda p: p.v, lambda p: p.ci)  # type: ignore[arg-type]
    (bars,) = ax.containers
    (segments,) = [c.get_segments() for c in bars.lines[2]]
    assert len(segments) == 1
    (x0, y0), (x1, y1) = segments[0]
    assert x0 == x1 == pytest.approx(30.0) and (y0, y1) == pytest.approx((1.4, 1.7))
