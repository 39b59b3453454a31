"""``frontier show``: one trial's figures as labelled rows and tables (search-time and
held-out side by side), never as the stored records' raw dictionaries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from frontier.cli.render import console

if TYPE_CHECKING:
    from frontier.study.read import StudyTrial


def trial(r: StudyTrial) -> None:
    """``frontier show``: the trial's figures side by side (search-time, held-out), its
    tasks, its held-out SLO verdicts, then its plan and per-layer widths."""
    from rich.markup import escape

    from frontier.search.display import widths_bars

    con = console()
    con.print(
        f"[bold]trial {r.number}[/] ({r.state}{', chosen' if r.chosen else ''}"
        f"{', Pareto' if r.pareto else ''}{', ' + escape(r.warm_start) if r.warm_start else ''})"
    )
    if r.note:
        con.print(f"note: {escape(r.note)}")
    if r.search or r.final:
        con.print(_figures_table(r.search, r.final))
    else:
        con.print("no figures recorded")
    if any(rec.get("tasks") for rec in (r.search, r.final or {})):
        con.print(_tasks_table(r.search, r.final))
    if r.final and r.final.get("violations"):
        con.print(_verdicts_table(r.final))
    if r.timing:
        con.print("seconds: " + ", ".join(f"{k} {_fixed(1)(v)}" for k, v in r.timing.items()))
    if r.plan is not None:
        con.print(r.plan.describe())
    for line in widths_bars(r):
        con.print(line, highlight=False)


def _shown(x: Any, fmt: Callable[[float], str]) -> str:
    """A stored figure: "-" where absent or not a number (NaN is stored as None), a string
    ("inf") as it is, yes/no for a flag, a number by ``fmt``."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return fmt(float(x))
    if isinstance(x, (list, tuple)):
        return ", ".join(_shown(v, fmt) for v in x)
    return str(x)


def _fixed(digits: int) -> Callable[[Any], str]:
    return lambda x: _shown(x, lambda v: f"{v:.{digits}f}")


def _percent(x: Any) -> str:
    return _shown(x, lambda v: f"{100 * v:.1f}%")


def _count(x: Any) -> str:
    return _shown(x, lambda v: f"{v:,.0f}")


def _general(x: Any) -> str:
    return _shown(x, lambda v: f"{v:.6g}")


# a record's figures with a label and a unit, in the order they are shown; ``tasks``,
# ``extra``, ``check_texts``, ``violations`` and ``undecided`` are shown on their own
_FIGURES: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("mlp_kept", "MLP parameters kept", _percent),
    ("params_kept", "parameters kept", _percent),
    ("total_params", "parameters", _count),
    ("ppl_ratio", "ppl ratio", _fixed(3)),
    ("ppl_ci", "ppl ratio interval", _fixed(3)),
    ("ppl_confidence", "ppl interval level", _percent),
    ("ppl", "perplexity", _fixed(3)),
    ("nll", "NLL (nats/token)", _fixed(4)),
    ("kl", "KL (nats/token)", _fixed(4)),
    ("mean_retained", "mean task retention", _percent),
    ("mean_acc", "mean task accuracy", _fixed(3)),
    ("tokens", "held-out tokens", _count),
    ("feasible", "meets every SLO", _general),
    ("spread", "re-measured for the fits only", _general),
)
_APART = ("tasks", "extra", "check_texts", "violations", "undecided")


def _flat(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A record's nested figures as one level, the keys joined by spaces."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        label = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, label + " "))
        else:
            out[label] = value
    return out


def _figures_table(search: Mapping[str, Any], final: Mapping[str, Any] | None) -> Any:
    """One row per figure, a column per stage: every figure of the records but their
    tasks and SLO verdicts (tables of their own), a figure of a later version by its key."""
    from rich.markup import escape
    from rich.table import Table

    stages = [search] if final is None else [search, final]
    table = Table(box=None, show_edge=False, pad_edge=False)
    table.add_column("figure", overflow="fold")
    for name in ("search-time", "held-out")[: len(stages)]:
        table.add_column(name, justify="right", overflow="fold")

    def row(label: str, cells: list[str]) -> None:  # "": not in that stage's record
        if any(c != "" for c in cells):
            table.add_row(escape(label), *(escape(c) for c in cells))

    for key, label, fmt in _FIGURES:
        row(label, [fmt(rec[key]) if key in rec else "" for rec in stages])
    extra = [rec.get("extra") or {} for rec in stages]
    for name in sorted({k for e in extra for k in e}):
        row(name, [_general(e[name]) if name in e else "" for e in extra])
    sources = sorted({s for rec in stages for s in rec.get("check_texts") or {}})
    for source in sources:
        figures = [_flat((rec.get("check_texts") or {}).get(source) or {}) for rec in stages]
        names = list(dict.fromkeys(k for f in figures for k in f))
        for key in names:
            label, fmt = next(((lb, f) for k, lb, f in _FIGURES if k == key), (key, _general))
            row(f"{label} ({source})", [fmt(f[key]) if key in f else "" for f in figures])
    if final is not None and final.get("undecided"):
        row("undecided SLOs", ["", ", ".join(str(s) for s in final["undecided"])])
    known = {k for k, _, _ in _FIGURES} | set(_APART)
    others = [_flat({k: v for k, v in rec.items() if k not in known}) for rec in stages]
    for key in dict.fromkeys(k for f in others for k in f):
        row(key, [_general(f[key]) if key in f else "" for f in others])
    return table


_TASK_KEYS = (
    "metric",
    "acc",
    "acc_ci",
    "baseline",
    "retained",
    "ci",
    "n_docs",
    "gained",
    "lost",
    "confidence",
)


def _tasks_table(search: Mapping[str, Any], final: Mapping[str, Any] | None) -> Any:
    """Per task, a row per figure and a column per stage (the task's metric in its label,
    the intervals' confidence in the title where they share one)."""
    from rich.markup import escape
    from rich.table import Table

    stages = [search] if final is None else [search, final]
    per = [rec.get("tasks") or {} for rec in stages]
    shown = {t: [_task_figures(tasks.get(t)) for tasks in per] for tasks in per for t in tasks}
    levels = {f["confidence"] for cols in shown.values() for f in cols if "confidence" in f}
    table = Table(
        title="tasks"
        + (f" (intervals at {next(iter(levels))} confidence)" if len(levels) == 1 else ""),
        title_justify="left",
        box=None,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("task", overflow="fold")
    table.add_column("figure", overflow="fold")
    for name in ("search-time", "held-out")[: len(stages)]:
        table.add_column(name, justify="right", overflow="fold")
    for task, cols in shown.items():
        metrics = {f["metric"] for f in cols if "metric" in f}
        hidden = {"metric"} if len(metrics) == 1 else set()
        hidden |= {"confidence"} if len(levels) == 1 else set()
        labels = [k for k in dict.fromkeys(k for f in cols for k in f) if k not in hidden]
        name = task + (f" ({next(iter(metrics))})" if "metric" in hidden else "")
        for i, label in enumerate(labels):
            cells = [escape(f.get(label, "")) for f in cols]
            table.add_row(escape(name) if i == 0 else "", escape(label), *cells)
    return table


def _task_figures(d: Mapping[str, Any] | None) -> dict[str, str]:
    """One task's figures at one stage, by label (none where the stage did not measure
    it): accuracy and retention with their intervals, and the documents only the pruned
    (gained) or only the unpruned model (lost) got right."""
    if not d:
        return {}
    out = {
        "metric": str(d.get("metric", "-")),
        "accuracy": _fixed(3)(d.get("acc")) + _interval(d.get("acc_ci"), _fixed(3)),
        "baseline": _fixed(3)(d.get("baseline")),
        "retained": _percent(d.get("retained")) + _interval(d.get("ci"), _percent),
        "documents": _count(d.get("n_docs")),
    }
    if "gained" in d or "lost" in d:
        out["gained / lost"] = f"+{_count(d.get('gained'))} / -{_count(d.get('lost'))}"
    if "confidence" in d:
        out["confidence"] = _confidence(d["confidence"])
    rest = _flat({k: v for k, v in d.items() if k not in _TASK_KEYS})
    out.update({k: _general(v) for k, v in rest.items()})
    return out


def _confidence(x: Any) -> str:
    return _shown(x, lambda v: f"{100 * v:g}%")


def _interval(ci: Any, fmt: Callable[[Any], str]) -> str:
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return "" if ci is None else f" ({_general(ci)})"
    return f" ({fmt(ci[0])}\u2013{fmt(ci[1])})"


def _verdicts_table(final: Mapping[str, Any]) -> Any:
    """Each SLO's held-out verdict and constraint value (> 0: violated)."""
    from rich.markup import escape
    from rich.table import Table

    undecided = set(final.get("undecided") or [])
    table = Table(box=None, show_edge=False, pad_edge=False)
    table.add_column("held-out SLO", overflow="fold")
    table.add_column("verdict", overflow="fold")
    table.add_column("constraint (> 0: missed)", justify="right", overflow="fold")
    for slo, value in (final.get("violations") or {}).items():
        if slo in undecided:
            verdict = "could not tell"
        elif not isinstance(value, (int, float)):
            verdict = "not measured"
        else:
            verdict = "missed" if value > 0 else "met"
        shown = _shown(value, lambda v: f"{v:+.4g}")
        table.add_row(escape(str(slo)), verdict, shown)
    return table
