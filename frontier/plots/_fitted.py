"""Pictures of fitted laws: loss and accuracy against fraction removed, tasks breaking."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from frontier.errors import FrontierError
from frontier.laws import FitResult, StudyFits
from frontier.plots._canvas import (
    _DEFAULT_RETENTION,
    _GREY,
    _SLO,
    _new,
    _save,
    _slos,
    _title,
    task_label,
)
from frontier.study.summary import StudySummary


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
        xs = [100 * (p.mlp_removed if fits.x == "mlp" else p.params_removed) for p in sel]
        ys = [100 * p.retained.get(task, p.tasks[task] / base) for p in sel]
        ax.scatter(xs, ys, s=12, color=color, alpha=0.55)
        # each point's paired confidence interval, where it was measured with one
        with_ci = [(x, y, p) for x, y, p in zip(xs, ys, sel, strict=True) if task in p.retained_ci]
        if with_ci:
            ax.errorbar(
                [x for x, _, _ in with_ci],
                [y for _, y, _ in with_ci],
                yerr=[
                    [y - 100 * p.retained_ci[task][0] for _, y, p in with_ci],
                    [100 * p.retained_ci[task][1] - y for _, y, p in with_ci],
                ],
                fmt="none",
                ecolor=color,
                alpha=0.35,
                lw=1.0,
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
    interval = " (bars: paired confidence intervals)" if any(p.retained_ci for p in pts) else ""
    _title(
        fig,
        f"{summary.name}: retained accuracy per task{interval}",
        summary,
        data=task_label(summary, fits.stage),
    )
    return _save(fig, path)
