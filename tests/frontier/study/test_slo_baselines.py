"""Task SLOs when a baseline is missing: never a pass, never a figure from part of the tasks."""

from __future__ import annotations

import pytest

from frontier.study.slo import TaskScore, TrialMetrics, parse_slo


def test_tasks_retention_with_a_missing_baseline_is_not_measured() -> None:
    # arc_easy retains 100%, mmlu has no baseline: the mean retention does not exist, and is
    # not arc_easy's alone
    metrics = TrialMetrics(tasks={"arc_easy": TaskScore(0.5, 0.5), "mmlu": TaskScore(0.3, None)})
    slo = parse_slo("tasks>=90%")
    assert slo.measured(metrics) is None
    assert slo.violation(metrics) is None
    assert slo.satisfied(metrics) is None
    # an absolute floor needs no baseline: the mean accuracy is (0.5 + 0.3) / 2
    assert parse_slo("tasks>=0.3").measured(metrics) == pytest.approx(0.4)
    assert parse_slo("tasks>=0.5").satisfied(metrics) is False


def test_a_zero_baseline_is_no_baseline() -> None:
    metrics = TrialMetrics(tasks={"arc_easy": TaskScore(0.2, 0.0)})
    assert TaskScore(0.2, 0.0).retention is None
    assert parse_slo("tasks>=90%").violation(metrics) is None
    assert parse_slo("arc_easy>=90%").violation(metrics) is None
    assert parse_slo("arc_easy>=0.25").violation(metrics) == pytest.approx(0.2)


def test_a_task_slo_reads_its_own_task_only() -> None:
    metrics = TrialMetrics(tasks={"arc_easy": TaskScore(0.45, 0.5), "mmlu": TaskScore(0.3, None)})
    assert parse_slo("arc_easy>=90%").measured(metrics) == pytest.approx(90.0)
    assert parse_slo("arc_easy>=90%").satisfied(metrics) is True
    assert parse_slo("mmlu>=90%").violation(metrics) is None
