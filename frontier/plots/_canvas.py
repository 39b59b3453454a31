"""What every picture shares: colours, labels, a figure on the Agg canvas, saving."""

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

from frontier.study.slo import SLO
from frontier.study.summary import StudySummary, TrialPoint

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


def subtitle(summary: StudySummary, data: str | None = None) -> str:
    """The model, the data the chart shows (the evaluation text unless ``data`` says
    otherwise) and the number of trials."""
    shown = data or text_label(summary.protocol)
    return f"{summary.model} · {shown} · {len(summary.points)} trials"


def task_label(summary: StudySummary, stage: str = "search") -> str:
    """The task data behind a task chart: the tasks, their documents and lm-eval version."""
    proto: Mapping[str, Any] = summary.protocol.get("tasks_search") or {}
    if stage == "final":
        proto = (summary.protocol.get("report") or {}).get("tasks") or {}
    tasks = proto.get("tasks") or sorted(summary.baseline_tasks)
    docs = proto.get("docs") or {}
    counts = sorted({int(n) for n in docs.values()}) if isinstance(docs, Mapping) else []
    span = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}" if counts else "?"
    role = "report" if stage == "final" else "search"
    version = proto.get("lm_eval_version")
    return (
        f"lm-eval{' ' + str(version) if version else ''} tasks {', '.join(tasks)}, "
        f"{span} {role} documents per (sub)task"
    )


def _new(ncols: int, *, width: float = 6.4, height: float = 4.8) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width * ncols, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _title(fig: Figure, title: str, summary: StudySummary, data: str | None = None) -> None:

    # about 11 characters per inch at this font size; long text labels wrap, not clip
    width = max(40, int(fig.get_figwidth() * 11))
    fig.suptitle("\n".join([title, *textwrap.wrap(subtitle(summary, data), width)]), fontsize=11)


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
