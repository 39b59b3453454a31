from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import matplotlib.image
import pytest

from frontier.errors import FrontierError
from frontier.laws import fit_study
from frontier.report import REPORT_FILES, render_report, write_report
from frontier.study.slo import parse_slos
from frontier.study.summary import (
    StudySummary,
    TrialPoint,
    mean_retention,
    point_metrics,
    retention,
    slo_violations,
)
from frontier.testing import synthetic_summary


@pytest.fixture(scope="module")
def study() -> StudySummary:
    return synthetic_summary(n_trials=30)


@pytest.fixture(scope="module")
def written(study: StudySummary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(study, tmp_path_factory.mktemp("report"))


# -- the data contract ----------------------------------------------------------------------
def test_summary_json_round_trip(study: StudySummary) -> None:
    again = StudySummary.from_json(study.to_json())
    assert again == study
    assert again.to_json() == study.to_json()


def test_round_trip_keeps_nan_and_missing_figures(study: StudySummary) -> None:
    broken = dataclasses.replace(study.points[0], loss=math.nan, ppl_ratio=None, tasks={})
    s = dataclasses.replace(study, points=(broken, *study.points[1:]))
    back = StudySummary.from_json(s.to_json()).points[0]
    assert back.loss is not None and math.isnan(back.loss)
    assert back.ppl_ratio is None and back.tasks == {}


def test_malformed_summaries_are_one_line_errors(study: StudySummary) -> None:
    with pytest.raises(FrontierError, match="not valid JSON"):
        StudySummary.from_json("{nope")
    data = json.loads(study.to_json())
    del data["baseline_loss"]
    with pytest.raises(FrontierError, match="malformed"):
        StudySummary.from_json(json.dumps(data))
    with pytest.raises(FrontierError, match="format"):
        StudySummary.from_dict({"format": 99})
    with pytest.raises(FrontierError):
        dataclasses.replace(study, slos=("ppl>2",))  # SLOs are parsed on construction
    with pytest.raises(FrontierError, match=r"\[0, 1\)"):
        dataclasses.replace(study.points[0], mlp_removed=1.0)


def test_retention_helpers() -> None:
    p = TrialPoint(
        number=1,
        mlp_removed=0.2,
        params_removed=0.1,
        loss=3.0,
        ppl_ratio=1.2,
        tasks={"ARC_Easy": 0.6, "piqa": 0.7, "extra": 0.5},
        feasible=True,
        pareto=True,
        chosen=False,
        widths=(8,),
        full=(16,),
        stage="search",
    )
    base = {"arc_easy": 0.8, "piqa": 0.7, "zero": 0.0}
    assert retention(p, base) == pytest.approx({"arc_easy": 0.75, "piqa": 1.0})
    assert mean_retention(p, base) == pytest.approx(0.875)  # zero baseline: undefined, skipped
    assert mean_retention(p, {**base, "hellaswag": 0.4}) is None  # a baseline task missing
    assert mean_retention(p, {}) is None
    m = point_metrics(p, base)
    assert m.mlp_kept == pytest.approx(0.8) and m.tasks["arc_easy"].retention == pytest.approx(0.75)
    slos = parse_slos(["ppl<1.5", "arc_easy>=80%", "hellaswag>=0.3"])
    judged = dataclasses.replace(p, violations=slo_violations(p, base, slos))
    assert judged.missed == ("arc_easy>=80%", "hellaswag>=0.3 (not measured)")


# -- the report -------------------------------------------------------------------------------
def test_report_files_exist(written: Path) -> None:
    assert written.name == "report.md"
    for name in REPORT_FILES.values():
        path = written.parent / name
        assert path.exists() and path.stat().st_size > 1000, name
        if name.endswith(".png"):
            assert matplotlib.image.imread(path).shape[0] >= 400


def test_report_prints_the_protocol(study: StudySummary, written: Path) -> None:
    text = written.read_text()
    for value in (
        study.model,
        "hf:wikitext:wikitext-2-raw-v1",
        "262144",
        "32768",
        "| context_length | 1024 |",
        "arc_easy, hellaswag, piqa",
        "| lm_eval_version | 0.4.9 |",
        "TPESampler(seed=0, multivariate=True)",
        "| trials | 30 |",
        "| wall_time_s | 1234.5 |",
        "`ppl<1.6`: perplexity below 1.6x",
    ):
        assert value in text, value


def test_report_lists_the_pareto_set_and_the_chosen_trial(
    study: StudySummary, written: Path
) -> None:
    text = written.read_text()
    chosen = study.chosen
    assert chosen is not None
    assert f"**Chosen: trial {chosen.number}**" in text
    pareto = text.split("## Pareto set")[1].split("## Compression laws")[0]
    for p in study.pareto:
        star = " ★" if p.chosen else ""
        row = next(line for line in pareto.splitlines() if line.startswith(f"| {p.number}{star} |"))
        final = study.final_for(p.number)
        assert final is not None and final.ppl_ratio is not None and p.ppl_ratio is not None
        # search and final figures side by side
        assert f"{p.ppl_ratio:.3f} / {final.ppl_ratio:.3f}" in row
    for role in ("pareto", "fits", "widths", "retention"):
        assert f"]({REPORT_FILES[role]})" in text  # relative links


def test_report_states_fits_and_limits(written: Path) -> None:
    text = written.read_text()
    laws = text.split("## Compression laws")[1]
    assert "L0 + a·r + b·r²" in laws and "L0·(1+r)^β" in laws and "A0 − c·r" in laws
    assert "fits better" in laws or "equally well" in laws
    assert "| `ppl<1.6` | quadratic loss |" in laws
    assert "| `tasks>=90%` | linear retention |" in laws
    assert "arc_easy: at" in laws  # the first task to break is listed


def test_report_rebuilds_from_summary_json(written: Path, tmp_path: Path) -> None:
    saved = StudySummary.from_json((written.parent / "summary.json").read_text())
    again = write_report(saved, tmp_path)
    assert again.read_text() == written.read_text()


def test_report_without_a_feasible_point(tmp_path: Path) -> None:
    s = synthetic_summary(n_trials=12, slos=("ppl<1.01",), final=False)
    assert s.chosen is None
    text = write_report(s, tmp_path).read_text()
    assert "**No feasible point**" in text and "No trial is on the feasible Pareto front" in text
    assert "came closest" in text and "`ppl<1.01`" in text
    assert not (tmp_path / "widths.png").exists()


def test_report_without_a_chosen_point_after_search_passes(tmp_path: Path) -> None:
    """Trials passed at search time, the re-measured ones failed held out: the report says
    so (not "none met every SLO"), names the largest pass not re-measured and what to do."""
    s = synthetic_summary(n_trials=12)
    passed = sorted((p for p in s.points if p.feasible), key=lambda p: -p.mlp_removed)
    measured = {p.number for p in passed[:2]}  # the two largest were re-measured, and failed
    s = dataclasses.replace(
        s,
        points=tuple(dataclasses.replace(p, chosen=False) for p in s.points),
        final=tuple(
            dataclasses.replace(p, feasible=False, chosen=False, spread=False)
            for p in s.final
            if p.number in measured
        ),
    )
    assert s.chosen is None and len(passed) > 2 and len(s.final) == 2
    waiting = max((p for p in passed if p.number not in measured), key=lambda p: p.mlp_removed)
    text = write_report(s, tmp_path).read_text()
    assert f"**No point chosen**: {len(passed)} of 12 trials met every SLO" in text
    assert "No feasible point" not in text
    assert f"the largest trial {waiting.number} (" in text and "--report-points" in text
    numbers = ", ".join(str(p.number) for p in s.final)
    assert f"(trials {numbers}), none met them there" in text


def test_report_warns_when_the_chosen_point_fails_at_report_fidelity(
    study: StudySummary,
) -> None:
    chosen = study.chosen
    assert chosen is not None
    final = tuple(dataclasses.replace(p, feasible=False) if p.chosen else p for p in study.final)
    s = dataclasses.replace(study, final=final)
    text = render_report(s, fit_study(s), {})
    assert "misses at least one SLO" in text


def test_report_states_how_fine_task_figures_are(study: StudySummary) -> None:
    docs = {"arc_easy": 400, "mmlu_anatomy": 20, "mmlu_virology": 20}
    protocol = {
        **study.protocol,
        "tasks_search": {"docs": docs, "subtasks": {"mmlu": ["mmlu_anatomy", "mmlu_virology"]}},
    }
    base = {"arc_easy": 0.7, "mmlu": 0.3}
    summary = dataclasses.replace(
        study, protocol=protocol, baseline_tasks=base, baseline_tasks_final={}
    )
    text = render_report(summary, fit_study(summary), {})
    section = text.split("## How fine the task figures are", 1)[1].split("\n## ", 1)[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in section.splitlines() if "|" in line}
    # 400 documents at 0.7: SE 0.023, far above chance; mmlu: 40 documents at 0.3, SE 0.072
    assert "| 400 | 0.700 | 0.023 | 0.250 |" in rows["arc_easy"]
    assert "chance" not in rows["arc_easy"].split("|")[-2]
    assert "| 40 | 0.300 | 0.072 | 0.250 |" in rows["mmlu"]
    assert "within 2 SE of chance" in rows["mmlu"]
    assert "mmlu: the unpruned model is not clearly above chance" in section


def test_report_marks_trials_re_measured_only_to_spread_the_front(study: StudySummary) -> None:
    spread = next(p for p in study.final if not p.chosen)
    final = tuple(dataclasses.replace(p, spread=p is spread) for p in study.final)
    protocol = {**study.protocol, "final_remeasurement": {"fit_tokens": 4096}}
    s = dataclasses.replace(study, final=final, protocol=protocol)
    text = render_report(s, fit_study(s), {})
    marked = [line for line in text.splitlines() if line.startswith(f"| {spread.number} ")]
    assert marked and "†" in marked[0]
    assert "† marks a trial re-measured on fewer held-out tokens (4096)" in text
    assert sum("†" in line for line in text.splitlines() if line.startswith("| ")) == 1
    plain = render_report(study, fit_study(study), {})
    assert "†" not in plain
    assert StudySummary.from_json(s.to_json()).final == s.final  # the mark round-trips
