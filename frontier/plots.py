"""Pictures of a study, drawn from stored numbers: Pareto front, fitted laws, widths, tasks.

Every function takes a :class:`~frontier.study.summary.StudySummary` (and its fits where it draws
them) and an output path, writes a PNG and returns the path. Figures are built with
``matplotlib.figure.Figure`` and the Agg canvas directly, not pyplot: no global figure
state, no backend switch for whoever imports this, safe from worker threads.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from frontier.errors import FrontierError
from frontier.laws import FitResult, StudyFits
from frontier.study.slo import SLO
from frontier.study.summary import StudySummary, TrialPoint, mean_retention

__all__ = [
    "break_threshold",
    "breaking_points",
    "plot_fits",
    "plot_pareto",
    "plot_retention",
    "plot_widths",
    "subtitle",
    "text_label",
]

_DPI = 110
_GREY = "#b0b0b0"
_FEASIBLE = "#6baed6"
_PARETO = "#e6550d"
_FINAL = "#222222"
_CHOSEN = "#d62728"
_SLO = "#c51b7d"
# Where no accuracy SLO says what "broken" means, a task keeping under 90% of its
# unpruned accuracy is read as broken for the "which breaks first" ordering.
_DEFAULT_RETENTION = 90.0


# -- labels ------------------------------------------------------------------------------
def text_label(protocol: Mapping[str, Any]) -> str:
    """A short name for the evaluation text, from whatever the protocol records."""
    for key in ("text", "text_label", "eval_text", "evaluation_text"):
        v = protocol.get(key)
        if isinstance(v, str) and v:
            return v
    for key in ("evaluation", "perplexity", "ppl", "search_text", "text"):
        v = protocol.get(key)
        if isinstance(v, Mapping):
            src = v.get("source") or v.get("label")
            if isinstance(src, str) and src:
                role = v.get("role")
                return f"{src} ({role})" if isinstance(role, str) and role else src
    src = protocol.get("source")
    return src if isinstance(src, str) and src else "evaluation text not recorded"


def subtitle(summary: StudySummary) -> str:
    return f"{summary.model} · {text_label(summary.protocol)} · {len(summary.points)} trials"


def _new(ncols: int, *, width: float = 6.4, height: float = 4.8) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width * ncols, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _title(fig: Figure, title: str, summary: StudySummary) -> None:
    import textwrap

    # about 11 characters per inch at this font size; long text labels wrap, not clip
    width = max(40, int(fig.get_figwidth() * 11))
    fig.suptitle("\n".join([title, *textwrap.wrap(subtitle(summary), width)]), fontsize=11)


def _save(fig: Figure, path: Path | str) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=_DPI)
    return out


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _pct(points: Sequence[TrialPoint]) -> np.ndarray:
    return np.array([100.0 * p.mlp_removed for p in points])


def _slos(summary: StudySummary, metric: str) -> list[SLO]:
    return [s for s in summary.parsed_slos() if s.metric == metric]


def _note(ax: Axes, text: str) -> None:
    ax.text(0.01, 0.01, text, transform=ax.transAxes, fontsize=8, color="#555555", va="bottom")


# -- (a) Pareto front ----------------------------------------------------------------------
def _scatter_stages(
    ax: Axes, summary: StudySummary, value: Any, *, label_slo: list[tuple[float, str]]
) -> int:
    """Search points by status, final points and the chosen one; returns how many were left out."""
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
    pareto = sorted((p for p in shown if p.pareto), key=lambda p: p.mlp_removed)
    if pareto:
        ax.plot(
            _pct(pareto),
            [value(p) for p in pareto],
            "-o",
            color=_PARETO,
            ms=5,
            lw=1.2,
            label="Pareto set (search)",
            zorder=3,
        )
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


def plot_pareto(summary: StudySummary, path: Path | str) -> Path:
    """Perplexity ratio (and mean retained accuracy) vs % MLP removed, every trial."""
    has_tasks = any(mean_retention(p, summary.baselines_for(p)) is not None for p in summary.points)
    fig, axes = _new(2 if has_tasks else 1)
    ax = axes[0]
    ppl_slos = [(s.threshold, str(s)) for s in _slos(summary, "ppl")]
    left = _scatter_stages(ax, summary, lambda p: p.ppl_ratio, label_slo=ppl_slos)
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


# -- (b) fitted laws -------------------------------------------------------------------------
def _curve_x(fits: Sequence[FitResult]) -> np.ndarray:
    top = max((f.r_range[1] for f in fits if f.ok and f.r_range), default=0.5)
    return np.linspace(0.0, min(0.99, top * 1.15 + 0.02), 200)


def _fit_label(fit: FitResult, formula: str) -> str:
    if not fit.ok:
        return f"{formula}: not fitted"
    return f"{formula}  (R²={fit.r2:.3f}, AIC={fit.aic:.1f})"


def plot_fits(summary: StudySummary, fits: StudyFits, path: Path | str) -> Path:
    """Loss vs fraction removed with the quadratic and power-law fits; accuracy lines per task."""
    task_fits = {t: f for t, f in fits.tasks.items()}
    fig, axes = _new(2 if task_fits else 1)
    ax = axes[0]
    pts = summary.points if fits.stage == "search" else summary.final
    xs = [100 * (p.mlp_removed if fits.x == "mlp" else p.params_removed) for p in pts]
    losses = [
        (x, p.loss)
        for x, p in zip(xs, pts, strict=True)
        if p.loss is not None and math.isfinite(p.loss)
    ]
    ax.scatter([x for x, _ in losses], [y for _, y in losses], s=14, c=_GREY, label="trials")
    if fits.stage == "search" and fits.loss_quadratic.n > len(losses):
        # fit_study put the unpruned model in at r = 0; show the point the curves lean on.
        ax.scatter([0.0], [summary.baseline_loss], s=40, marker="s", c="#444444", label="unpruned")
    grid = _curve_x([fits.loss_quadratic, fits.loss_power])
    for fit, formula, color, ls in (
        (fits.loss_quadratic, "L0 + a·r + b·r²", "#3182bd", "-"),
        (fits.loss_power, "L0·(1+r)^β", "#31a354", "--"),
    ):
        if fit.ok:
            ax.plot(
                100 * grid,
                fit.predict(grid),
                ls,
                color=color,
                lw=1.8,
                label=_fit_label(fit, formula),
            )
        else:
            ax.plot([], [], ls, color=color, label=_fit_label(fit, formula))
    if fits.baseline_loss is not None:
        base = fits.baseline_loss
        ax.axhline(base, color="#888888", lw=0.8, label=f"unpruned loss {base:.3f}")
        for slo in _slos(summary, "ppl"):
            bound = base + math.log(slo.threshold)
            ax.axhline(bound, color=_SLO, ls=":", lw=1.2, label=f"SLO {slo} ⇔ loss ≤ {bound:.3f}")
    x_word = "MLP parameters" if fits.x == "mlp" else "all parameters"
    ax.set_xlabel(f"{x_word} removed (%)")
    ax.set_ylabel("mean token NLL (nats)")
    title = f"test loss ({fits.stage} figures): {fits.loss_verdict()}"
    ax.set_title(textwrap.fill(title, 80), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if task_fits:
        ax2 = axes[1]
        grid = _curve_x(list(task_fits.values()))
        for i, (task, fit) in enumerate(sorted(task_fits.items())):
            color = f"C{i % 10}"
            tx = [
                100 * (p.mlp_removed if fits.x == "mlp" else p.params_removed)
                for p in pts
                if task in p.tasks
            ]
            ty = [p.tasks[task] for p in pts if task in p.tasks]
            ax2.scatter(tx, ty, s=12, color=color, alpha=0.6)
            acc0 = summary.baseline_tasks.get(task)
            if acc0 is not None and fits.stage == "search" and fit.n > len(ty):
                ax2.scatter([0.0], [acc0], s=40, marker="s", color=color, edgecolors="#444444")
            if fit.ok:
                c = fit.value("c")
                ax2.plot(
                    100 * grid,
                    fit.predict(grid),
                    color=color,
                    lw=1.6,
                    label=f"{task}: −{c / 10:.3f} per 10% (R²={fit.r2:.2f})",
                )
            else:
                ax2.plot([], [], color=color, label=f"{task}: not fitted ({fit.reason})")
        ax2.set_xlabel(f"{x_word} removed (%)")
        ax2.set_ylabel("accuracy (fraction correct)")
        ax2.set_title("task accuracy, linear fits A0 − c·r", fontsize=9)
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8, loc="best")
    _title(fig, f"{summary.name}: compression laws", summary)
    return _save(fig, path)


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


# -- (d) which tasks break first --------------------------------------------------------------
def break_threshold(summary: StudySummary, task: str) -> tuple[float, str]:
    """The retained-accuracy % below which ``task`` counts as broken, and where it comes from."""
    for slo in summary.parsed_slos():
        if slo.metric == task and slo.relative:
            return slo.threshold, f"SLO {slo}"
    for slo in summary.parsed_slos():
        if slo.metric == "tasks" and slo.relative:
            return slo.threshold, f"SLO {slo}"
    return _DEFAULT_RETENTION, f"{_DEFAULT_RETENTION:.0f}% (no retention SLO)"


def breaking_points(summary: StudySummary, fits: StudyFits) -> dict[str, float | None]:
    """Per task, the % removed where its fitted retention crosses its break threshold.

    None: the line never crosses within [0, 100)%, or the task's fit failed.
    """
    out: dict[str, float | None] = {}
    for task, fit in fits.tasks.items():
        base = summary.baseline_tasks.get(task)
        if not fit.ok or base is None or base <= 0:
            out[task] = None
            continue
        thr, _ = break_threshold(summary, task)
        a0, c = fit.value("A0"), fit.value("c")
        # A0 − c·r = thr/100·base  =>  r = (A0 − thr/100·base) / c
        if c <= 0:
            out[task] = None
            continue
        r = (a0 - thr / 100 * base) / c
        out[task] = 100 * r if 0 <= r < 1 else (0.0 if r < 0 else None)
    return out


def plot_retention(summary: StudySummary, fits: StudyFits, path: Path | str) -> Path:
    """Retained accuracy per task vs % MLP removed, ordered by which task breaks first."""
    tasks = [t for t in fits.tasks if summary.baseline_tasks.get(t, 0) > 0]
    if not tasks:
        raise FrontierError(f"study {summary.name!r} measured no task with a baseline accuracy")
    pts = summary.points if fits.stage == "search" else summary.final
    breaks = breaking_points(summary, fits)
    order = sorted(tasks, key=lambda t: (breaks[t] is None, breaks[t] or 0.0, t))
    fig, axes = _new(1, width=7.6, height=5.0)
    ax = axes[0]
    grid = _curve_x([fits.tasks[t] for t in tasks])
    thresholds: dict[float, str] = {}
    for i, task in enumerate(order):
        base = summary.baseline_tasks[task]
        color = f"C{i % 10}"
        sel = [p for p in pts if task in p.tasks]
        ax.scatter(
            [100 * (p.mlp_removed if fits.x == "mlp" else p.params_removed) for p in sel],
            [100 * p.tasks[task] / base for p in sel],
            s=12,
            color=color,
            alpha=0.55,
        )
        fit = fits.tasks[task]
        b = breaks[task]
        when = f"breaks at {b:.0f}% removed" if b is not None else "holds over the data"
        if fit.ok:
            ax.plot(
                100 * grid,
                100 * fit.predict(grid) / base,
                color=color,
                lw=1.8,
                label=f"{task}: {when}",
            )
            if b is not None and b < 100 * grid[-1]:
                ax.axvline(b, color=color, lw=0.8, ls=":")
        else:
            ax.plot([], [], color=color, label=f"{task}: not fitted ({fit.reason})")
        thr, why = break_threshold(summary, task)
        thresholds[thr] = why
    for thr, why in thresholds.items():
        ax.axhline(thr, color=_SLO, ls="--", lw=1.2, label=f"broken below {why}")
    ax.axhline(100.0, color="#888888", lw=0.8)
    x_word = "MLP parameters" if fits.x == "mlp" else "all parameters"
    ax.set_xlabel(f"{x_word} removed (%)")
    ax.set_ylabel("retained accuracy (% of unpruned)")
    ax.set_title("which tasks break first (legend: first to break at the top)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    _title(fig, f"{summary.name}: retained accuracy per task", summary)
    return _save(fig, path)
