"""Pictures of measured figures: the Pareto front of every trial, the chosen plan's widths."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from frontier.errors import FrontierError
from frontier.plots._canvas import (
    _CHOSEN,
    _FEASIBLE,
    _FINAL,
    _GREY,
    _PARETO,
    _SLO,
    _finite,
    _new,
    _note,
    _pct,
    _save,
    _slos,
    _title,
)
from frontier.study.summary import StudySummary, TrialPoint, mean_retention


# -- (a) Pareto front ----------------------------------------------------------------------
def front_line(
    summary: StudySummary, value: Any, unpruned: float
) -> tuple[list[float], list[float]]:
    """The search-time Pareto line as drawn: % MLP removed and ``value``, from the
    unpruned model (0% removed, ``unpruned``) on, by fraction removed."""
    pareto = sorted(
        (p for p in summary.points if p.pareto and _finite(value(p))), key=lambda p: p.mlp_removed
    )
    return [0.0, *_pct(pareto)], [unpruned, *(value(p) for p in pareto)]


def _scatter_stages(
    ax: Axes,
    summary: StudySummary,
    value: Any,
    *,
    label_slo: list[tuple[float, str]],
    unpruned: float,
    interval: Any = None,
) -> int:
    """Search points by status, final points (with their intervals, where ``interval``
    gives a point's (low, high) or None) and the chosen one, the Pareto line from the
    unpruned model (``unpruned``: its value); returns how many were left out."""
    shown = [p for p in summary.points if _finite(value(p))]
    left_out = sum(1 for p in summary.points if value(p) is not None and not _finite(value(p)))
    groups = [
        ([p for p in shown if not p.feasible], _GREY, "infeasible", 14, 1),
        ([p for p in shown if p.feasible and not p.pareto], _FEASIBLE, "feasible", 18, 2),
    ]
    for pts, color, label, size, z in groups:
        if pts:
            ys = [value(p) for p in pts]
            ax.scatter(_pct(pts), ys, s=size, c=color, label=label, zorder=z, linewidths=0)
    xs, ys = front_line(summary, value, unpruned)
    if len(xs) > 1:
        ax.plot(xs, ys, "-o", color=_PARETO, ms=5, lw=1.2, label="Pareto set (search)", zorder=3)
    ax.scatter([0.0], [unpruned], s=40, marker="s", c="#444444", label="unpruned", zorder=4)
    final = [p for p in summary.final if _finite(value(p))]
    if final:
        ax.scatter(
            _pct(final),
            [value(p) for p in final],
            s=46,
            marker="D",
            facecolors="none",
            edgecolors=_FINAL,
            linewidths=1.2,
            label="Pareto set (final, report fidelity)",
            zorder=4,
        )
        draw_intervals(ax, final, value, interval)
    chosen = summary.chosen
    if chosen is not None and _finite(value(chosen)):
        ax.scatter(
            [100 * chosen.mlp_removed],
            [value(chosen)],
            s=220,
            marker="*",
            c=_CHOSEN,
            edgecolors="white",
            linewidths=0.8,
            label=f"chosen: trial {chosen.number}",
            zorder=5,
        )
    for y, text in label_slo:
        ax.axhline(y, color=_SLO, ls="--", lw=1.2, label=f"SLO {text}", zorder=0)
    return left_out


def draw_intervals(
    ax: Axes, points: list[TrialPoint], value: Any, interval: Any, color: str = _FINAL
) -> None:
    """Vertical bars over ``points`` from each one's interval (``interval(p)``: (low,
    high) or None; none drawn where it is None or not finite)."""
    if interval is None:
        return
    with_ci = [(p, ci) for p in points if (ci := interval(p)) is not None and all(map(_finite, ci))]
    if not with_ci:
        return
    ys = [value(p) for p, _ in with_ci]
    ax.errorbar(
        _pct([p for p, _ in with_ci]),
        ys,
        yerr=[
            [y - ci[0] for y, (_, ci) in zip(ys, with_ci, strict=True)],
            [ci[1] - y for y, (_, ci) in zip(ys, with_ci, strict=True)],
        ],
        fmt="none",
        ecolor=color,
        elinewidth=1.0,
        capsize=3,
        zorder=4,
    )


def plot_pareto(summary: StudySummary, path: Path | str) -> Path:
    """Perplexity ratio (and mean retained accuracy) vs % MLP removed, every trial."""
    has_tasks = any(mean_retention(p, summary.baselines_for(p)) is not None for p in summary.points)
    fig, axes = _new(2 if has_tasks else 1)
    ax = axes[0]
    ppl_slos = [(s.threshold, str(s)) for s in _slos(summary, "ppl")]
    left = _scatter_stages(
        ax,
        summary,
        lambda p: p.ppl_ratio,
        label_slo=ppl_slos,
        unpruned=1.0,
        interval=lambda p: p.ppl_ci,
    )
    ax.axhline(1.0, color="#888888", lw=0.8, zorder=0)
    ratios = [
        p.ppl_ratio
        for p in (*summary.points, *summary.final)
        if p.ppl_ratio is not None and math.isfinite(p.ppl_ratio)
    ]
    ratios += [t for t, _ in ppl_slos]
    if ratios and max(ratios) / max(min(ratios), 1e-9) > 8:
        ax.set_yscale("log")  # a few broken trials would flatten everything else
    ax.set_xlabel("MLP parameters removed (%)")
    ax.set_ylabel("perplexity / unpruned perplexity (ratio)")
    ax.set_title("perplexity ratio")
    if left:
        _note(ax, f"{left} trial(s) with infinite/NaN perplexity not shown")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if not any(p.feasible for p in summary.points):
        ax.set_title("perplexity ratio: no trial met every SLO", color=_CHOSEN)
    if has_tasks:
        ax2 = axes[1]
        slos = [(s.threshold, str(s)) for s in _slos(summary, "tasks") if s.relative]
        _scatter_stages(
            ax2,
            summary,
            lambda p: _pct_or_none(mean_retention(p, summary.baselines_for(p))),
            label_slo=slos,
            unpruned=100.0,
        )
        ax2.axhline(100.0, color="#888888", lw=0.8, zorder=0)
        ax2.set_xlabel("MLP parameters removed (%)")
        ax2.set_ylabel("mean retained accuracy (% of unpruned)")
        ax2.set_title(f"mean retained accuracy over {len(summary.baseline_tasks)} task(s)")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8, loc="lower left")
    _title(fig, f"{summary.name}: Pareto front", summary)
    return _save(fig, path)


def _pct_or_none(v: float | None) -> float | None:
    return None if v is None else 100.0 * v


# -- (c) the chosen plan ---------------------------------------------------------------------
def plot_widths(summary: StudySummary, path: Path | str, point: TrialPoint | None = None) -> Path:
    """Kept MLP width per layer of the chosen point (or ``point``), full width as an outline."""
    p = point if point is not None else summary.chosen
    if p is None:
        raise FrontierError(f"study {summary.name!r} has no chosen point to draw widths for")
    n = len(p.widths)
    fig, axes = _new(1, width=max(6.4, min(16.0, 0.32 * n + 2)))
    ax = axes[0]
    layers = np.arange(n)
    ax.bar(layers, p.full, width=0.8, fill=False, edgecolor="#444444", lw=1.0, label="full width")
    ax.bar(layers, p.widths, width=0.8, color=_FEASIBLE, edgecolor="none", label="kept width")
    if n <= 48:
        for i, (w, f) in enumerate(zip(p.widths, p.full, strict=True)):
            # Inside the bar, so it never collides with the full-width outline above.
            ax.text(
                i,
                w - 0.02 * max(p.full),
                f"{100 * w / f:.0f}%",
                ha="center",
                va="top",
                fontsize=7,
                rotation=90,
                color="#08306b",
            )
    ax.set_xlabel("layer")
    ax.set_ylabel("MLP width (neurons)")
    ax.set_xticks(layers if n <= 48 else layers[:: max(1, n // 24)])
    ax.set_ylim(0, max(p.full) * 1.12)
    ppl = f", ppl ratio {p.ppl_ratio:.3f} ({p.stage} figures)" if _finite(p.ppl_ratio) else ""
    ax.set_title(
        f"trial {p.number}: {100 * p.mlp_removed:.1f}% of MLP parameters removed{ppl}", fontsize=9
    )
    ax.legend(fontsize=8, loc="lower right")
    _title(fig, f"{summary.name}: kept MLP width per layer", summary)
    return _save(fig, path)
