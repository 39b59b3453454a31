"""The verdicts on a study's figures, defined here once for every reader (CLI, report,
compare, verify):

- a point's SLO *violations* are Optuna constraint values (SLO text -> value, > 0
  violated, None not measured): the trial's constraints for search-time figures, the
  final record's ``violations`` for held-out ones (see :mod:`frontier.study.schema`);
- :attr:`~frontier.study.point.TrialPoint.missed`: the SLOs a point misses, an
  unmeasured one included;
- :func:`feasible`: every SLO measured and met;
- :func:`nearest`: the trial closest to meeting every SLO (see there);
- :func:`retention`: a task's accuracy as a fraction of the unpruned model's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from frontier.study.measured import TaskScore, TrialMetrics
from frontier.study.point import TrialPoint
from frontier.study.slo import SLO

__all__ = [
    "feasible",
    "mean_retention",
    "nearest",
    "point_metrics",
    "ranked_by_nearness",
    "retention",
    "slo_violations",
]


def retention(point: TrialPoint, baseline_tasks: Mapping[str, float]) -> dict[str, float]:
    """Accuracy / unpruned accuracy per task measured on both (0.9 = keeps 90%): the
    retention recorded with the trial where it has one (paired on the documents it used,
    which adaptive documents make differ from trial to trial), else acc / ``baseline_tasks``.

    Tasks without a positive baseline are left out: their retention is undefined.
    """
    out: dict[str, float] = {}
    for task, acc in point.tasks.items():
        r = TaskScore(acc, baseline_tasks.get(task), paired=point.retained.get(task)).retention
        if r is not None:
            out[task] = r
    return out


def mean_retention(point: TrialPoint, baseline_tasks: Mapping[str, float]) -> float | None:
    """Mean retention over the point's tasks, None if none has one.

    Like the ``tasks>=`` SLO, a point missing a baseline task's accuracy gets None rather
    than a mean over fewer tasks, so every mean is over the same tasks.
    """
    ret = retention(point, baseline_tasks)
    wanted = {t for t, b in baseline_tasks.items() if b > 0}
    if not ret or not wanted <= set(ret):
        return None
    return sum(ret[t] for t in wanted) / len(wanted)


def point_metrics(point: TrialPoint, baseline_tasks: Mapping[str, float]) -> TrialMetrics:
    """The point's figures as the SLO language reads them, so SLOs can be re-checked."""
    return TrialMetrics(
        ppl_ratio=point.ppl_ratio,
        params_kept=1.0 - point.params_removed,
        mlp_kept=1.0 - point.mlp_removed,
        tasks={
            t: TaskScore(
                a,
                baseline_tasks.get(t),
                retention_ci=point.retained_ci.get(t),
                paired=point.retained.get(t),
            )
            for t, a in point.tasks.items()
        },
    )


def feasible(violations: Mapping[str, float | None]) -> bool:
    """Every SLO in ``violations`` measured and met (constraint value <= 0).

    The one verdict on a set of figures: the search's on a complete trial's constraints
    (which hold every SLO once it is complete), the final one on held-out figures.
    """
    return all(v is not None and v <= 0 for v in violations.values())


def slo_violations(
    point: TrialPoint, baseline_tasks: Mapping[str, float], slos: Iterable[SLO]
) -> dict[str, float | None]:
    """Each SLO's constraint value on the point's figures (None: not measured).

    For points whose verdicts were not recorded; a study's own points carry the values
    the search recorded (KL, which a point has no figure for, among them).
    """
    metrics = point_metrics(point, baseline_tasks)
    return {str(slo): slo.violation(metrics) for slo in slos}


def ranked_by_nearness(points: Iterable[TrialPoint]) -> list[TrialPoint]:
    """Points with at least one measured SLO, nearest to meeting every SLO first.

    The order: the smallest largest violation (constraint values are scaled by their
    thresholds, so SLOs in different units compare), ties to the smaller summed
    violation, then to fewer parameters kept, then to the lower trial number. SLOs not
    measured are left out of both sums (a value that does not exist is not guessed).
    """
    measured = [p for p in points if p.worst_violation is not None]
    return sorted(
        measured,
        key=lambda p: (p.worst_violation, p.total_violation, -p.params_removed, p.number),
    )


def nearest(points: Iterable[TrialPoint]) -> TrialPoint | None:
    """The point nearest to meeting every SLO (see :func:`ranked_by_nearness`), or None.

    Pass each trial's figures to believe
    (:meth:`~frontier.study.summary.StudySummary.believed`): the CLI, the report and the
    runner all do, so they name the same trial.
    """
    ranked = ranked_by_nearness(points)
    return ranked[0] if ranked else None
