"""Several models side by side: the efficiency frontier chart and a table per model.

The chart draws, per model, the best mean retained accuracy reached at each fraction of
MLP parameters removed (the upper envelope of its trials, from the unpruned model at 0%).
A study with no task figures is drawn on a perplexity-ratio panel instead, and the
markdown says so. Numbers only: no torch, no model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from frontier._io import write_bytes_atomic
from frontier.errors import FrontierError
from frontier.laws import FitResult, fit_study
from frontier.plots import draw_intervals, task_label, text_label
from frontier.study.summary import StudySummary, TrialPoint, mean_retention

__all__ = ["COMPARE_AT", "ComparisonResult", "ModelRow", "compare", "spearman"]

#: Fractions of MLP parameters removed at which retention is read off the fitted line.
COMPARE_AT: tuple[float, ...] = (0.1, 0.2, 0.3)
_DPI = 110


@dataclass(frozen=True)
class Spearman:
    """Rank correlation between perplexity ratio and mean task retention over a model's trials.

    Strongly negative means perplexity ranks trials the way tasks do, so perplexity is a
    fair proxy for the search; near 0 means it is not. ``rho`` is None when undefined.
    """

    rho: float | None
    p: float | None
    n: int
    reason: str = ""

    def describe(self) -> str:
        if self.rho is None:
            return f"n/a (n={self.n}: {self.reason})"
        return f"ρ = {self.rho:+.2f} (n={self.n}, p={self.p:.2g})"


@dataclass(frozen=True)
class ModelRow:
    """One model's line in the comparison table. Fractions, not percentages."""

    label: str
    study: str
    model: str
    has_tasks: bool
    retention_at: Mapping[float, float | None] = field(default_factory=dict)
    degradation_per_10pct: float | None = None  # retention lost per 10% MLP removed
    retention_fit: FitResult | None = None
    chosen_number: int | None = None
    chosen_mlp_removed: float | None = None
    chosen_params_removed: float | None = None
    spearman: Spearman = field(default_factory=lambda: Spearman(None, None, 0, "not computed"))

    def describe(self) -> str:
        best = (
            f"{100 * self.chosen_mlp_removed:.1f}% MLP removed meets the SLOs"
            if self.chosen_mlp_removed is not None
            else "no feasible point"
        )
        slope = (
            f"{100 * self.degradation_per_10pct:.1f} pt retention lost per 10% removed"
            if self.degradation_per_10pct is not None
            else "no task fit"
        )
        return f"{self.label}: {best}; {slope}; ppl-vs-tasks {self.spearman.describe()}"


@dataclass(frozen=True)
class ComparisonResult:
    rows: tuple[ModelRow, ...]
    chart: Path
    markdown: Path
    ppl_fallback: tuple[str, ...]  # labels drawn by perplexity ratio: no task figures

    def describe(self) -> str:
        fallback = (
            f"; {len(self.ppl_fallback)} by ppl ratio (no tasks)" if self.ppl_fallback else ""
        )
        return f"{len(self.rows)} models compared in {self.markdown.name}{fallback}"


# -- numbers ------------------------------------------------------------------------------
def spearman(xs: Sequence[float], ys: Sequence[float]) -> Spearman:
    """Spearman's ρ with its p-value, or why it is undefined (too few or constant values)."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
    n = len(pairs)
    if n < 3:
        return Spearman(None, None, n, "fewer than 3 trials with both figures")
    a = np.array([x for x, _ in pairs])
    b = np.array([y for _, y in pairs])
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return Spearman(None, None, n, "one of the two is constant")
    res = stats.spearmanr(a, b)
    return Spearman(float(res.statistic), float(res.pvalue), n)


def _labels(summaries: Sequence[StudySummary]) -> list[str]:
    """The model name, or model (study) where two studies share a model."""
    models = [s.model for s in summaries]
    return [s.model if models.count(s.model) == 1 else f"{s.model} ({s.name})" for s in summaries]


def _row(summary: StudySummary, label: str) -> ModelRow:
    has_tasks = any(mean_retention(p, summary.baseline_tasks) is not None for p in summary.points)
    fits = fit_study(summary)
    ret = fits.retention
    retention_at: dict[float, float | None] = dict.fromkeys(COMPARE_AT)
    degradation = None
    if ret is not None and ret.ok:
        retention_at = {r: float(ret.predict([r])[0]) for r in COMPARE_AT}
        degradation = 0.1 * ret.value("c")
    chosen = summary.chosen
    pairs = [
        (p.ppl_ratio, m)
        for p in summary.points
        if p.ppl_ratio is not None and (m := mean_retention(p, summary.baseline_tasks)) is not None
    ]
    rho = spearman([x for x, _ in pairs], [y for _, y in pairs])
    return ModelRow(
        label=label,
        study=summary.name,
        model=summary.model,
        has_tasks=has_tasks,
        retention_at=retention_at,
        degradation_per_10pct=degradation,
        retention_fit=ret,
        chosen_number=None if chosen is None else chosen.number,
        chosen_mlp_removed=None if chosen is None else chosen.mlp_removed,
        chosen_params_removed=None if chosen is None else chosen.params_removed,
        spearman=rho,
    )


def envelope(
    points: Sequence[tuple[float, float]], *, higher_is_better: bool
) -> list[tuple[float, float]]:
    """The best y reached at each x or beyond: the frontier a model can be operated on.

    Walking from the most compressed point down, keep a point only if it beats every
    more compressed one, so the line is what you get for at least that much removed.
    """
    sign = 1.0 if higher_is_better else -1.0
    best = -math.inf
    out: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (-p[0], -sign * p[1])):
        if sign * y > best:
            best = sign * y
            out.append((x, y))
    return out[::-1]


def frontier_line(
    points: Sequence[tuple[float, float]], *, higher_is_better: bool
) -> list[tuple[float, float]]:
    """The :func:`envelope` of ``points``, drawn from the unpruned model (``points[0]``,
    at 0% removed) even where a slightly pruned trial scored above it by chance."""
    front = envelope(points, higher_is_better=higher_is_better)
    return front if front[0] == points[0] else [points[0], *front]


# -- chart --------------------------------------------------------------------------------
def _panel_points(
    summary: StudySummary, value: Callable[[TrialPoint], float | None], at_zero: float
) -> list[tuple[float, float]]:
    pts = [(0.0, at_zero)]  # the unpruned model: the line's common origin
    for p in summary.points:
        v = value(p)
        if v is not None and math.isfinite(v):
            pts.append((100 * p.mlp_removed, v))
    return pts


def _chart(
    summaries: Sequence[StudySummary], labels: Sequence[str], rows: Sequence[ModelRow], path: Path
) -> Path:
    with_tasks = [i for i, r in enumerate(rows) if r.has_tasks]
    without = [i for i, r in enumerate(rows) if not r.has_tasks]
    panels: list[str] = (["tasks"] if with_tasks else []) + (["ppl"] if without else [])
    fig = Figure(figsize=(7.2 * len(panels), 5.2), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        members = with_tasks if panel == "tasks" else without
        for i in members:
            s, color = summaries[i], f"C{i % 10}"
            value = _panel_value(s, panel)
            pts = _panel_points(s, value, 100.0 if panel == "tasks" else 1.0)
            ax.scatter([x for x, _ in pts], [y for _, y in pts], s=8, color=color, alpha=0.25)
            front = frontier_line(pts, higher_is_better=panel == "tasks")
            ax.plot(
                [x for x, _ in front],
                [y for _, y in front],
                "-o",
                ms=3.5,
                lw=1.8,
                color=color,
                label=labels[i],
            )
            # the held-out re-measurements the chosen point comes from, with their
            # intervals where recorded: why a star may sit short of where the line crosses
            # an SLO (the search text was kinder than the held-out one)
            final = [p for p in s.final if (v := value(p)) is not None and math.isfinite(v)]
            if final:
                ax.scatter(
                    [100 * p.mlp_removed for p in final],
                    [value(p) for p in final],
                    marker="D",
                    s=26,
                    facecolors="none",
                    edgecolors=color,
                    linewidths=1.0,
                    zorder=4,
                )
                if panel == "ppl":
                    draw_intervals(ax, final, value, lambda p: p.ppl_ci, color=color)
            c = s.chosen
            y = value(c) if c is not None else None
            if c is not None and y is not None and math.isfinite(y):
                ax.scatter(
                    [100 * c.mlp_removed],
                    [y],
                    marker="*",
                    s=180,
                    color=color,
                    edgecolors="black",
                    linewidths=0.6,
                    zorder=5,
                )
        ax.set_xlabel("MLP parameters removed (%)")
        if panel == "tasks":
            ax.set_ylabel("mean retained accuracy (% of unpruned)")
            ax.set_title(
                "efficiency frontier: best retained accuracy at each compression", fontsize=10
            )
        else:
            ax.set_ylabel("perplexity / unpruned perplexity (ratio)")
            ax.set_title("no task figures: perplexity ratio instead (lower is better)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="★ chosen point, ◇ held out; lines: search", title_fontsize=8)
    # what each panel shows: task retention names its tasks, perplexity its text
    shown = [f"retention: {task_label(summaries[i], 'search')}" for i in with_tasks[:1]]
    shown += sorted({f"perplexity: {text_label(summaries[i].protocol)}" for i in without})
    fig.suptitle(
        f"Efficiency frontier of {len(summaries)} models\n{' · '.join(shown)}", fontsize=11
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


def _panel_value(summary: StudySummary, panel: str) -> Callable[[TrialPoint], float | None]:
    """What a panel's y axis reads from a point: retention in % or the ppl ratio."""
    if panel == "ppl":
        return lambda p: p.ppl_ratio

    def retained(p: TrialPoint) -> float | None:
        m = mean_retention(p, summary.baseline_tasks)
        return None if m is None else 100.0 * m

    return retained


# -- markdown -----------------------------------------------------------------------------
def _fmt_pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _markdown(
    summaries: Sequence[StudySummary], rows: Sequence[ModelRow], chart: str, fallback: Sequence[str]
) -> str:
    header = [
        "model",
        "study",
        *(f"retained at {100 * r:.0f}%" for r in COMPARE_AT),
        "lost per 10% removed",
        "largest compression meeting the SLOs",
        "Spearman ρ(ppl ratio, retention)",
    ]
    lines = [
        f"# Comparison of {len(rows)} models",
        "",
        f"![Efficiency frontier: mean retained accuracy vs MLP parameters removed]({chart})",
        "",
        "Retention (mean over tasks of accuracy / unpruned accuracy) at 10/20/30% of MLP "
        "parameters removed and its loss per 10% removed come from each study's linear fit "
        "A0 − c·r to its search-time trials; the largest compression is the study's chosen "
        "point; Spearman ρ ranks the trials by perplexity ratio and by retention (strongly "
        "negative: perplexity orders trials as the tasks do).",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for s, row in zip(summaries, rows, strict=True):
        chosen = (
            f"{_fmt_pct(row.chosen_mlp_removed)} MLP ({_fmt_pct(row.chosen_params_removed)} "
            f"all), trial {row.chosen_number}"
            if row.chosen_mlp_removed is not None
            else "no feasible point"
        )
        per10 = (
            f"{100 * row.degradation_per_10pct:.1f} pt"
            if row.degradation_per_10pct is not None
            else "–"
        )
        cells = [
            row.label,
            s.name,
            *(_fmt_pct(row.retention_at.get(r)) for r in COMPARE_AT),
            per10,
            chosen,
            row.spearman.describe(),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    if fallback:
        lines += [
            f"No task figures for {', '.join(fallback)}: drawn by perplexity ratio on the "
            "second panel instead of retained accuracy, and left out of the retention columns.",
            "",
        ]
    lines += ["SLOs per study:", ""]
    lines += [f"- {s.name}: {', '.join(f'`{t}`' for t in s.slos) or '(none)'}" for s in summaries]
    lines.append("")
    return "\n".join(lines)


def compare(summaries: Sequence[StudySummary], out_dir: Path | str) -> ComparisonResult:
    """Write ``compare.md`` and ``compare.png`` for several studies into ``out_dir``."""
    if not summaries:
        raise FrontierError("compare needs at least one study summary")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = _labels(summaries)
    rows = tuple(_row(s, label) for s, label in zip(summaries, labels, strict=True))
    fallback = tuple(r.label for r in rows if not r.has_tasks)
    chart = _chart(summaries, labels, rows, out / "compare.png")
    md = out / "compare.md"
    write_bytes_atomic(md, _markdown(summaries, rows, chart.name, fallback).encode())
    return ComparisonResult(rows=rows, chart=chart, markdown=md, ppl_fallback=fallback)
