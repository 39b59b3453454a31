"""Reading a stored study: trials, chosen and nearest, summary; without torch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from frontier.errors import FrontierError
from frontier.report import write_report
from frontier.study.read import (
    chosen_trial,
    nearest_trial,
    read_summary,
    read_trial,
    read_trials,
)
from frontier.testing import HandTrial, store_study

# SLOs ppl<1.5 and params<=60%. Trial 0 misses ppl by 0.30 and meets params (-0.10);
# trial 1 misses both by 0.20 (largest 0.20, sum 0.40); trial 2 both by 0.25. The
# smallest summed violation is trial 0's, the smallest largest violation trial 1's.
INFEASIBLE = [
    HandTrial(params_kept=0.54, ppl_ratio=1.95),
    HandTrial(params_kept=0.72, ppl_ratio=1.8),
    HandTrial(params_kept=0.75, ppl_ratio=1.875),
]


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hand.db'}"


def test_the_data_separate_summed_from_largest_violation(tmp_path: Path) -> None:
    trials = read_trials(store_study(_url(tmp_path), INFEASIBLE))
    points = [t.figures for t in trials]
    assert all(p is not None for p in points)
    by_sum = min(points, key=lambda p: p.total_violation)  # type: ignore[union-attr]
    assert by_sum is not None and by_sum.number == 0
    assert nearest_trial(store_study(_url(tmp_path), [], name="empty")) is None


def test_cli_and_report_name_the_same_nearest_trial(tmp_path: Path) -> None:
    from frontier.cli import render

    study = store_study(_url(tmp_path), INFEASIBLE)
    console = Console(record=True, width=400)
    assert render.outcome(console, study, []) is False
    line = " ".join(console.export_text().split())
    cli = re.search(r"nearest: trial (\d+) ", line)
    assert cli is not None, line
    assert "which misses ppl<1.5, params<=60% on its search-time figures" in line

    report = write_report(read_summary(study), tmp_path / "report").read_text()
    closest = report.split("came closest")[1]
    first_row = next(r for r in closest.splitlines() if re.match(r"\| \d+ \|", r))
    assert first_row.startswith(f"| {cli.group(1)} | search-time |"), first_row
    assert int(cli.group(1)) == 1  # the decided definition: smallest largest violation


def test_nearest_reads_held_out_figures_where_measured(tmp_path: Path) -> None:
    study = store_study(
        _url(tmp_path),
        [
            # the nearest on search figures (ppl 1.6), far worse on held-out text (2.4)
            HandTrial(params_kept=0.55, ppl_ratio=1.6, final_ppl_ratio=2.4),
            HandTrial(params_kept=0.58, ppl_ratio=1.8),
        ],
    )
    near = nearest_trial(study)
    assert near is not None and near.number == 1
    assert read_summary(study).nearest is not None
    assert read_summary(study).nearest.number == 1  # type: ignore[union-attr]
    held_out = read_trial(study, 0).figures
    assert held_out is not None and held_out.stage == "final"
    assert held_out.missed == ("ppl<1.5",)


def test_trials_pareto_chosen_and_records(tmp_path: Path) -> None:
    study = store_study(
        _url(tmp_path),
        [
            HandTrial(params_kept=0.5, ppl_ratio=1.3, final_ppl_ratio=1.4),  # chosen
            HandTrial(params_kept=0.45, ppl_ratio=1.45, final_ppl_ratio=1.6),  # fails held-out
            HandTrial(params_kept=0.7, ppl_ratio=1.2, state="pruned"),  # screened
            HandTrial(params_kept=0.5, ppl_ratio=1.9),  # infeasible
        ],
    )
    trials = read_trials(study)
    assert [t.state for t in trials] == ["complete", "complete", "pruned", "complete"]
    assert [t.feasible for t in trials] == [True, True, False, False]
    assert [t.pareto for t in trials] == [True, True, False, False]
    assert [t.chosen for t in trials] == [True, False, False, False]
    assert {t.number for t in read_trials(study, pareto_only=True)} == {0, 1}
    assert trials[2].note == "screened by hand"
    assert trials[1].figures is not None and not trials[1].figures.feasible
    assert trials[1].mlp_removed == pytest.approx(0.55)
    chosen = chosen_trial(study)
    assert chosen is not None and chosen.number == 0 and chosen.final is not None
    row = trials[0].to_dict()
    assert row["trial"] == 0 and row["chosen"] and row["widths"] == [32, 32, 32]
    summary = read_summary(study)
    assert summary.chosen is not None and summary.chosen.number == 0
    assert summary.chosen.stage == "final"
    assert [p.number for p in summary.final] == [0, 1]
    assert summary.protocol["trials"]["screened"] == 1  # type: ignore[index]
    with pytest.raises(FrontierError, match="no trial 9"):
        read_trial(study, 9)


def test_reading_a_study_imports_neither_torch_nor_transformers(tmp_path: Path) -> None:
    url = _url(tmp_path)
    store_study(url, [*INFEASIBLE, HandTrial(params_kept=0.5, ppl_ratio=1.3, final_ppl_ratio=1.4)])
    out = tmp_path / "report"
    code = f"""
import sys
from frontier.cli import main
for argv in (["pareto", "hand"], ["pareto", "hand", "--all", "--json"], ["show", "hand", "3"],
             ["report", "hand", "--out", {str(out)!r}]):
    assert main([*argv, "--storage", {url!r}]) == 0, argv
heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
assert not heavy, heavy
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "trial 3" in p.stdout and (out / "report.md").is_file()
