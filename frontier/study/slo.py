"""Service-level objectives: the constraints a pruned model must meet, as short text.

An SLO is ``METRIC OP THRESHOLD``:

=====================  ====================================================================
``ppl<1.5``            perplexity at most 1.5x the unpruned model's (a ratio, >= 1.0)
``kl<0.5``             mean KL divergence from the unpruned model, nats/token (> 0)
``params<=80%``        total parameters kept, % of the unpruned model, in (0, 100]
``mlp<=70%``           MLP parameters kept, % of the unpruned model's, in (0, 100]
``arc_easy>=90%``      the task keeps at least 90% of its unpruned accuracy, in (0, 100]
``arc_easy>=0.55``     absolute accuracy on the task, in [0, 1]
``tasks>=95%``         mean retention over every measured task (``tasks>=0.5``: mean accuracy)
``speed>=1.2``         prefill throughput at least 1.2x the unpruned model's (measured)
=====================  ====================================================================

The named metrics are rows of :data:`frontier.study.metrics.METRIC_ROWS`: a new one is
an objective and a row there.

Costs (ppl, kl, params, mlp) are upper bounds and take ``<`` or ``<=``; accuracies are
lower bounds and take ``>`` or ``>=``.

A task floor is decided with a stated confidence where the measurement carries its
interval (a study's ``confidence``, 0.9 by default; :mod:`frontier.stats`): the search
reads the interval's upper end (a trial that might pass is not rejected), the final
re-measurement its lower end (the chosen point passes with that confidence, else the
study says it could not tell). ``tasks>=`` averages the tasks' bounds.

Whitespace around the parts is ignored and metric names are case-insensitive; ``str(slo)``
is the canonical text and parses back to an equal value. Several SLOs are an AND.

What an SLO is checked against (:class:`TrialMetrics`, :class:`TaskScore`, :data:`Side`)
is defined in :mod:`frontier.study.measured` and re-exported here.

This module must not import torch: the CLI parses SLOs before it loads anything.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import operator
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Literal, cast

from frontier.errors import FrontierError
from frontier.stats import Decision
from frontier.study.measured import Side, TaskScore, TrialMetrics
from frontier.study.metrics import METRIC

__all__ = [
    "FORMS",
    "METRICS",
    "SLO",
    "Need",
    "Op",
    "Side",
    "TaskScore",
    "TrialMetrics",
    "parse_slo",
    "parse_slos",
]

Op = Literal["<", "<=", ">", ">="]
#: The measurement an SLO reads: ``ppl``, ``kl``, ``size``, ``tasks`` or an objective's name.
Need = str

#: The metrics with a fixed meaning; any other name is a task's accuracy.
METRICS: tuple[str, ...] = tuple(METRIC)
_UPPER = frozenset(m.name for m in METRIC.values() if m.upper)

#: Named in every parse error so the user sees what is accepted.
FORMS = "ppl<1.5, kl<0.5, params<=80%, mlp<=70%, arc_easy>=90%, arc_easy>=0.55, tasks>=95%"

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# Longest first, so "<=" is not read as "<" followed by "=3".
_OP_RE = re.compile(r"<=|>=|=<|=>|==|!=|<|>|=")
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*", re.ASCII)
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

# A strict bound met with equality is violated, but (value - threshold) is 0 there; Optuna
# reads only > 0 as violated, so such a violation is reported as this tiny positive number.
_STRICT_EQUAL_VIOLATION = 1e-12


@dataclass(frozen=True)
class SLO:
    """One constraint. Build with :func:`parse_slo`; ``str()`` gives the canonical text.

    Attributes:
        metric: ``ppl``, ``kl``, ``params``, ``mlp``, ``tasks`` or a task name (lower case).
        op: the comparison the measured value must satisfy against ``threshold``.
        threshold: in the units written: a ratio (ppl), nats/token (kl), a percentage
            (when ``relative``) or an absolute accuracy in [0, 1].
        relative: the threshold was written with ``%``: a percentage of the unpruned
            model's figure (params, mlp, retained task accuracy).
    """

    metric: str
    op: Op
    threshold: float
    relative: bool = False

    def __post_init__(self) -> None:
        # -0.0 would print as "-0"; one zero keeps str() canonical.
        object.__setattr__(self, "threshold", float(self.threshold) + 0.0)
        object.__setattr__(self, "metric", str(self.metric).lower())
        problem = _problem(self.metric, self.op, self.threshold, self.relative)
        if problem is not None:
            raise FrontierError(f"SLO {str(self)!r}: {problem}")

    def __str__(self) -> str:
        unit = "%" if self.relative else ""
        return f"{self.metric}{self.op}{_format_number(self.threshold)}{unit}"

    # -- what it is about -------------------------------------------------------------
    @property
    def is_upper_bound(self) -> bool:
        return self.op in ("<", "<=")

    @property
    def task(self) -> str | None:
        """The task whose accuracy this SLO bounds, or None (including for ``tasks``)."""
        return None if self.metric in METRICS else self.metric

    @property
    def needs(self) -> Need:
        """The measurement this SLO reads, so a search can run cheap ones first."""
        row = METRIC.get(self.metric)
        return "tasks" if row is None else row.need

    def describe(self) -> str:
        """The SLO in words, for reports."""
        bound = "at most" if self.is_upper_bound else "at least"
        if self.op in ("<", ">"):
            bound = "below" if self.op == "<" else "above"
        t = _format_number(self.threshold)
        row = METRIC.get(self.metric)
        if row is not None and row.need != "tasks":
            return f"{row.words} {bound} {t}{row.unit}"
        subject = "mean over tasks" if self.metric == "tasks" else self.metric
        if self.relative:
            return f"{subject}: accuracy {bound} {t}% of the unpruned model's"
        return f"{subject}: accuracy {bound} {t}"

    # -- checking a measurement -------------------------------------------------------
    def measured(self, metrics: TrialMetrics) -> float | None:
        """The value this SLO compares, in the threshold's units; None if not measured."""
        m = self.metric
        row = METRIC.get(m)
        if row is not None and row.need != "tasks":
            value = metrics.extra.get(m) if row.field == "extra" else getattr(metrics, row.field)
            return None if value is None else (100.0 * value if row.percent else value)
        if m == "tasks":
            scores = list(metrics.tasks.values())
        else:
            score = metrics.tasks.get(m)
            scores = [] if score is None else [score]
        values = [s.bound(self.relative, metrics.side) for s in scores]
        known = [v for v in values if v is not None]
        if not known or len(known) < len(values):
            return None  # no task measured, or a retention without its baseline
        mean = sum(known) / len(known)
        return 100.0 * mean if self.relative else mean

    def satisfied(self, metrics: TrialMetrics) -> bool | None:
        """Whether the measurement meets the SLO; None if it was not measured."""
        v = self.violation(metrics)
        return None if v is None else v <= 0

    def decision(self, metrics: TrialMetrics) -> Decision | None:
        """``pass`` when even the pessimistic end of the measurement meets the SLO, ``fail``
        when even the optimistic end misses it, else ``undecided``; None if not measured.
        (Without intervals both ends are the estimate, so never ``undecided``.)"""
        low = self.satisfied(dataclasses.replace(metrics, side="pessimistic"))
        high = self.satisfied(dataclasses.replace(metrics, side="optimistic"))
        if low is None or high is None:
            return None
        return "pass" if low else ("undecided" if high else "fail")

    def violation(self, metrics: TrialMetrics) -> float | None:
        """An Optuna constraint value: > 0 violated, <= 0 satisfied; None if not measured.

        Scaled by the threshold so SLOs in different units compare:
        ``(value - threshold) / threshold`` for upper bounds and
        ``(threshold - value) / threshold`` for lower bounds (an absolute accuracy bound
        of 0 is not scaled). A NaN measurement (a broken model) is ``inf``: violated.
        None means the measurement is missing: the caller decides whether that is
        "not yet measured" (stage the evaluation) or a failure; it is never a pass.
        """
        value = self.measured(metrics)
        if value is None:
            return None
        if math.isnan(value):
            return math.inf
        return _violation(self.op, value, self.threshold)


def _violation(op: Op, value: float, threshold: float) -> float:
    scale = threshold if threshold > 0 else 1.0
    diff = value - threshold if op in ("<", "<=") else threshold - value
    scaled = diff / scale
    if _OPS[op](value, threshold):
        return scaled  # <= 0: the bound is met
    # Equality under a strict bound (diff == 0), or a difference lost to underflow.
    return scaled if scaled > 0 else _STRICT_EQUAL_VIOLATION


def _format_number(x: float) -> str:
    """Shortest text that parses back to exactly ``x``: 2.0 -> "2", 0.55 -> "0.55"."""
    text = repr(x)
    return text[:-2] if text.endswith(".0") else text


def _problem(metric: str, op: str, threshold: float, relative: bool) -> str | None:
    """Why (metric, op, threshold, relative) is not a valid SLO, or None if it is."""
    if op not in _OPS:
        return f"operator {op!r} is not supported; use <, <=, > or >= (e.g. {FORMS})"
    if not _NAME_RE.fullmatch(metric):
        return f"{metric!r} is not a metric name; use {', '.join(METRICS)} or a task name"
    if not math.isfinite(threshold):
        return "the threshold must be a finite number"
    upper = op in ("<", "<=")
    t = _format_number(threshold)
    row = METRIC.get(metric)
    if row is not None and row.need == "tasks":
        row = None  # the mean over tasks is checked as a task's floor is
    if row is not None and row.upper != upper:
        direction = "an upper bound: use < or <=" if row.upper else "a lower bound: use > or >="
        return f"{metric} is {direction} (e.g. {row.example})"
    if row is None and upper:
        what = "tasks (the mean over tasks)" if metric == "tasks" else f"{metric} (a task accuracy)"
        return f"{what} is a lower bound: use > or >= (e.g. {metric}>=90% or {metric}>=0.55)"
    if row is not None:
        if relative and not row.percent:
            return f"{metric} takes {row.takes}, not a percentage (e.g. {row.example})"
        if row.percent and not relative:
            # 0.8 was probably meant as a fraction, 80 as a percentage without its sign.
            pct = _format_number(round(threshold * 100, 10)) if threshold <= 1 else t
            return (
                f"{metric} takes {row.takes} (e.g. {row.example}); did you mean {metric}{op}{pct}%?"
            )
        return row.problem(threshold, t)
    if relative:
        if not 0 < threshold <= 100:
            return f"retained accuracy must be in (0, 100]%, got {t}% (e.g. {metric}>=90%)"
    elif not 0 <= threshold <= 1:
        hint = f"; did you mean {metric}{op}{t}%?" if 1 < threshold <= 100 else ""
        return f"absolute accuracy must be in [0, 1], got {t}{hint} (e.g. {metric}>=0.55)"
    return None


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def parse_slo(text: str, *, known_tasks: Collection[str] | None = None) -> SLO:
    """Parse one SLO, or raise a one-line :class:`FrontierError` naming the accepted forms.

    ``known_tasks``, when given, are the task names an accuracy SLO may name (any name
    is accepted as a task otherwise, to be checked when tasks are loaded).
    """
    if not isinstance(text, str):
        raise FrontierError(f"an SLO must be text like {FORMS}; got {type(text).__name__}")
    stripped = text.strip()
    where = f"SLO {_short(stripped)}"
    if not stripped:
        raise FrontierError(f"empty SLO; expected METRIC OP THRESHOLD, e.g. {FORMS}")
    match = _OP_RE.search(stripped)
    if match is None:
        raise FrontierError(
            f"{where}: no comparison; expected METRIC OP THRESHOLD with OP one of "
            f"<, <=, >, >= (e.g. {FORMS})"
        )
    name, op, rest = stripped[: match.start()].strip(), match.group(), stripped[match.end() :]
    if op not in _OPS:
        raise FrontierError(f"{where}: operator {op!r} is not supported; use <, <=, > or >=")
    if not name:
        raise FrontierError(f"{where}: no metric before {op!r} (e.g. {FORMS})")
    if not _NAME_RE.fullmatch(name):
        raise FrontierError(
            f"{where}: {_short(name)} is not a metric name; use {', '.join(METRICS)} "
            f"or a task name (e.g. {FORMS})"
        )
    metric = name.lower()
    rest = rest.strip()
    relative = rest.endswith("%")
    number = rest[:-1].strip() if relative else rest
    if not _NUMBER_RE.fullmatch(number):
        raise FrontierError(
            f"{where}: threshold {_short(rest)} is not a number (or a number with %); e.g. {FORMS}"
        )
    threshold = float(number)
    if metric not in METRICS and known_tasks is not None:
        known = sorted({t.lower() for t in known_tasks})
        if metric not in known:
            close = difflib.get_close_matches(metric, [*METRICS, *known], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise FrontierError(
                f"{where}: unknown metric or task {name!r}; {hint}metrics: "
                f"{', '.join(METRICS)}; tasks: {', '.join(known) or '(none)'}"
            )
    problem = _problem(metric, op, threshold, relative)
    if problem is not None:
        if metric not in METRICS:
            close = difflib.get_close_matches(metric, METRICS, n=1, cutoff=0.7)
            if close:
                problem += f" (or did you mean {close[0]!r}?)"
        raise FrontierError(f"{where}: {problem}")
    return SLO(metric, cast(Op, op), threshold, relative)


def parse_slos(
    texts: str | Iterable[str], known_tasks: Collection[str] | None = None
) -> tuple[SLO, ...]:
    """Parse several SLOs that must all hold (a comma-separated string is split).

    Identical SLOs are kept once (first occurrence order). Two *different* bounds on the
    same metric in the same units (``ppl<1.5`` with ``ppl<=2``) are rejected: only the
    tighter would matter, and which one was meant is the user's call. A bound in the
    wrong direction (``ppl>2``) is rejected by :func:`parse_slo`, so contradictory
    pairs such as ``ppl<1.5`` with ``ppl>2`` cannot be built.
    """
    if isinstance(texts, str):
        texts = [t for t in texts.split(",") if t.strip()]
    slos: list[SLO] = []
    by_key: dict[tuple[str, bool], SLO] = {}
    for text in texts:
        slo = parse_slo(text, known_tasks=known_tasks)
        key = (slo.metric, slo.relative)
        other = by_key.get(key)
        if other is None:
            by_key[key] = slo
            slos.append(slo)
        elif other != slo:
            raise FrontierError(
                f"conflicting SLOs {str(other)!r} and {str(slo)!r}: give one bound per metric"
            )
    return tuple(slos)
