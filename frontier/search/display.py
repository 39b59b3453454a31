"""Rich renderings of studies: the live progress line, the Pareto table, a trial's widths."""

from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from frontier.search import storage as st
from frontier.search.early_stop import stopped_early
from frontier.search.progress import describe_best
from frontier.study.read import StudyTrial


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}%"


def _num(x: Any, fmt: str = ".3f") -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return format(float(x), fmt)


def _with_interval(value: Any, ci: Any) -> str:
    """A ratio and, where recorded, its interval: ``1.967 [1.921, 2.014]``."""
    if not isinstance(ci, list) or len(ci) != 2:
        return _num(value)
    return f"{_num(value)} [{_num(ci[0])}, {_num(ci[1])}]"


def pareto_table(title: str, rows: list[StudyTrial], tasks: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in (
        "trial",
        "MLP removed",
        "params removed",
        "ppl ratio (search)",
        "ppl ratio (final)",
    ):
        table.add_column(col, justify="right")
    checks = sorted({c for r in rows if r.final for c in (r.final.get("check_texts") or {})})
    for source in checks:
        table.add_column(f"ppl ratio ({source})", justify="right")
    for task in tasks:
        table.add_column(f"{task} acc (ret.)", justify="right")
    table.add_column("feasible")
    table.add_column("note")
    for r in rows:
        src = r.final or r.search
        cells = [
            f"{'*' if r.chosen else ''}{r.number}",
            _pct(r.mlp_removed),
            _pct(r.params_removed),
            _num(r.search.get("ppl_ratio", r.search.get("kl"))),
            _with_interval(r.final.get("ppl_ratio"), r.final.get("ppl_ci")) if r.final else "-",
        ]
        for source in checks:
            check = ((r.final or {}).get("check_texts") or {}).get(source) or {}
            cells.append(_num(check.get("ppl_ratio")) if check else "-")
        for task in tasks:
            d = (src.get("tasks") or {}).get(task)
            cells.append("-" if not d else f"{d['acc']:.3f} ({_pct(d.get('retained'))})")
        cells.append("yes" if r.figures is not None and r.figures.feasible else "no")
        cells.append(r.warm_start or r.note or "")
        table.add_row(*cells, style="bold" if r.chosen else None)
    return table


def widths_bars(row: StudyTrial, width: int = 40) -> list[str]:
    if row.plan is None:
        return ["(no plan recorded)"]
    lines = []
    for i, (w, f) in enumerate(zip(row.plan.widths, row.plan.full, strict=True)):
        n = round(width * w / f)
        lines.append(f"layer {i:3d} {'█' * n}{'·' * (width - n)} {w:5d}/{f} ({100 * w / f:5.1f}%)")
    return lines


class LiveProgress:
    """Optuna callback drawing trials done and left, best feasible compression, ETA.

    ``total`` is the study's total (``None``: read from the stored spec on first use).
    """

    def __init__(self, console: Console, total: int | None) -> None:
        self.total = total
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: Any = None
        self.started = time.perf_counter()
        self.ran = 0

    def start(self, study: optuna.Study) -> None:
        if self.total is None:
            self.total = st.stored_spec(study).trials
        done = st.n_finished(study)
        self.task = self.progress.add_task("", total=self.total, completed=done, status="")
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def note(self, message: str) -> None:
        """What the study is doing now, shown in the bar's status until the next trial."""
        if self.task is not None:
            short = message if len(message) <= 60 else message[:59] + "…"
            self.progress.update(self.task, status=short)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.task is None:
            self.start(study)
        self.ran += 1
        done = st.n_finished(study)
        per = (time.perf_counter() - self.started) / self.ran
        status = f"{per:5.1f} s/trial  {describe_best(study)}"
        if stopped_early(study) is not None:  # the bar ends here: the search is over
            status += "  stopped early"
            self.progress.update(self.task, total=done)
        self.progress.update(self.task, completed=done, status=status)
