"""A tiny study with an lm-eval task: three objectives, staged evaluation, report pictures."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from frontier.cli import main
from frontier.data.mirror import build_mirror
from frontier.search.find import find
from frontier.search.verify import verify_export
from frontier.study.read import final_record, read_summary
from frontier.testing import small_spec


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # the mirror lives in the default cache (built once per machine, then reused)
    monkeypatch.delenv("FRONTIER_HOME", raising=False)
    return build_mirror(tasks=["arc_easy"])


def test_study_with_a_task_stages_and_reports(
    tiny_folder: Path, tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))
    # the tiny study's own caches in tmp, the benchmark mirror from the default cache
    import objectives.tasks as tasks_mod

    real_init = tasks_mod.TaskAccuracy.__init__

    def with_mirror(self, *a, **kw):  # type: ignore[no-untyped-def]
        kw.setdefault("mirror", str(mirror))
        real_init(self, *a, **kw)

    monkeypatch.setattr(tasks_mod.TaskAccuracy, "__init__", with_mirror)
    monkeypatch.setattr("frontier.search.context.check_tasks", lambda tasks, progress: None)
    spec = small_spec(
        tiny_folder,
        f"sqlite:///{tmp_path}/t.db",
        study="t",
        trials=6,
        tasks=("arc_easy",),
        task_docs=6,
        report_docs=6,
        task_batch_size=4,
    )
    result = find(spec)
    study = result.study
    assert len(study.directions) == 3
    measured = [t for t in study.trials if t.state == TrialState.COMPLETE]
    screened = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert measured and all(len(t.values) == 3 for t in measured)
    assert screened, "some trials were screened on the cheap figures alone"
    assert all("arc_easy" in t.user_attrs["frontier:search"]["tasks"] for t in measured)
    for t in screened:  # screened trials carry cheap figures and a reason, never an accuracy
        assert t.user_attrs["frontier:screened"]
        assert "tasks" not in t.user_attrs["frontier:search"]
    for t in study.best_trials:
        final = final_record(study, t)
        assert final is not None and final["tasks"]["arc_easy"]["n_docs"] == 6
        # the record names the documents and looks it used: one look of the 6 it may read
        assert final["tasks"]["arc_easy"]["docs"] == {"arc_easy": 6}
        assert final["tasks"]["arc_easy"]["looks"] == final["tasks"]["arc_easy"]["max_looks"] == 1
    summary = read_summary(study)
    assert summary.baseline_tasks and summary.baseline_tasks_final
    out = tmp_path / "report"
    assert main(["report", "t", "--storage", spec.storage_url, "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "arc_easy" in text and "pareto.png" in text
    for png in ("pareto.png", "fits.png"):
        assert (out / png).stat().st_size > 10_000
    # the report's point, exported in both formats and loaded by transformers alone,
    # measures what the report says (ppl and the task's accuracy)
    point = next(t for t in study.best_trials if final_record(study, t) is not None)
    for fmt in ("padded", "heterogeneous"):
        folder = tmp_path / fmt
        export = ["export", "t", str(point.number), "--storage", spec.storage_url]
        assert main([*export, "--out", str(folder), "--format", fmt]) == 0
        checked = verify_export(study, folder)
        assert checked.trust_remote_code == (fmt == "heterogeneous")
        assert [c.metric for c in checked.checks] == ["ppl", "ppl_ratio", "acc:arc_easy"]
        assert checked.ok, checked.checks
