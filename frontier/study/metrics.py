"""The named metrics an SLO can bound: one declarative row each.

A row says how the metric's threshold is written and checked, which measurement the
search takes to read it, and how :mod:`frontier.study.slo` describes it. Any name not
here is a task's accuracy. A metric backed by a registered objective (``objective``
set, e.g. ``speed``) needs nothing else: the search measures the objective on every
trial that meets the cheap SLOs' stage (:mod:`frontier.search.trial`), stores its value
under the metric's name and checks the SLO on it; the final verdict keeps the
search-time value (it has no held-out counterpart).

Adding a metric: an objective in ``objectives/`` (registered, contract-tested) and a row
in :data:`METRIC_ROWS`. This module must not import torch (the CLI parses SLOs first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One SLO metric.

    Attributes:
        name: what an SLO writes (lower case).
        upper: an upper bound (a cost: ``<``, ``<=``) or a lower bound (``>``, ``>=``).
        need: the measurement it reads, so a search runs cheap ones first: ``ppl``,
            ``kl``, ``size``, ``tasks``, or for an objective-backed metric its name.
        field: the :class:`frontier.study.measured.TrialMetrics` attribute holding it, or
            ``extra`` (objective-backed metrics: ``TrialMetrics.extra[name]``).
        percent: written with ``%`` (True), never (False); the measured fraction is
            then multiplied by 100.
        takes: what the threshold is, for errors (``kl takes nats/token, ...``).
        words: the metric in a report's sentence; ``unit`` follows the threshold.
        example: a valid SLO on it, named in errors.
        problem: why a threshold (and its text) is out of range, or None.
        objective: the registered objective measuring it (None: a built-in figure).
    """

    name: str
    upper: bool
    need: str
    field: str
    percent: bool
    takes: str
    words: str
    unit: str
    example: str
    problem: Callable[[float, str], str | None]
    objective: str | None = None


def _ppl_range(x: float, t: str) -> str | None:
    if x < 1.0:
        return (
            f"a perplexity ratio below 1.0 ({t}) asks the pruned model to beat the "
            "unpruned one and cannot be met; use a ratio >= 1.0 (e.g. ppl<1.5)"
        )
    return None


def _kl_range(x: float, t: str) -> str | None:
    return None if x > 0 else f"kl threshold must be > 0 nats/token, got {t} (e.g. kl<0.5)"


def _percent_range(example: str) -> Callable[[float, str], str | None]:
    def check(x: float, t: str) -> str | None:
        if 0 < x <= 100:
            return None
        return f"percentage must be in (0, 100], got {t}% (e.g. {example})"

    return check


def _speed_range(x: float, t: str) -> str | None:
    if x <= 0:
        return f"a speed-up must be > 0, got {t} (e.g. speed>=1.2)"
    return None


#: Every named metric; ``tasks`` (the mean over the measured tasks) is read by
#: :mod:`frontier.study.slo` itself, as every task name is.
METRIC_ROWS: tuple[Metric, ...] = (
    Metric(
        "ppl", True, "ppl", "ppl_ratio", False, "a ratio to the unpruned perplexity",
        "perplexity", "x the unpruned model's", "ppl<1.5", _ppl_range,
    ),
    Metric(
        "kl", True, "kl", "kl", False, "nats/token",
        "KL divergence from the unpruned model", " nats/token", "kl<0.5", _kl_range,
    ),
    Metric(
        "params", True, "size", "params_kept", True, "a percentage of the unpruned model",
        "parameters kept", "% of the unpruned model's", "params<=80%",
        _percent_range("params<=80%"),
    ),
    Metric(
        "mlp", True, "size", "mlp_kept", True, "a percentage of the unpruned model",
        "MLP parameters kept", "% of the unpruned model's", "mlp<=70%",
        _percent_range("mlp<=70%"),
    ),
    Metric(
        "tasks", False, "tasks", "tasks", True, "a percentage or an accuracy",
        "mean over tasks", "", "tasks>=95%", lambda _x, _t: None,
    ),
    Metric(
        "speed", False, "speed", "extra", False, "a prefill speed-up over the unpruned model",
        "prefill speed", "x the unpruned model's", "speed>=1.2", _speed_range,
        objective="speed",
    ),
)  # fmt: skip

METRIC: dict[str, Metric] = {m.name: m for m in METRIC_ROWS}


def objective_metrics(names: list[str] | tuple[str, ...]) -> list[Metric]:
    """The objective-backed metrics among ``names`` (an SLO's metrics), once each."""
    seen: list[Metric] = []
    for name in names:
        row = METRIC.get(name)
        if row is not None and row.objective is not None and row not in seen:
            seen.append(row)
    return seen


__all__ = ["METRIC", "METRIC_ROWS", "Metric", "objective_metrics"]
