from __future__ import annotations

from pathlib import Path

import pytest

from frontier.errors import FrontierError
from frontier.study.spec import StudySpec


def test_toml_spec_with_overrides_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'model = "gemma3-270m"\nslos = ["ppl<2.0", "arc_easy>=90%"]\n'
        'tasks = ["arc_easy"]\ntrials = 50\n'
    )
    spec = StudySpec.from_toml(path, trials=7)
    assert spec.model == "gemma3-270m" and spec.trials == 7 and spec.tasks == ("arc_easy",)
    path.write_text('model = "x"\ntrails = 5\n')
    with pytest.raises(FrontierError, match=r"unknown key.*trails"):
        StudySpec.from_toml(path)
    path.write_text("model = [")
    with pytest.raises(FrontierError, match="not valid TOML"):
        StudySpec.from_toml(path)


def test_fingerprint_ignores_budget_but_not_measurement() -> None:
    a = StudySpec()
    assert a.fingerprint("m") == a.replace(trials=999, timeout=5.0, sampler="random").fingerprint(
        "m"
    )
    # where the search may stop early: how long it runs, not what it measures
    assert a.fingerprint("m") == a.replace(early_stop=False).fingerprint("m")
    assert a.fingerprint("m") != a.replace(search_tokens=4096).fingerprint("m")
    assert a.fingerprint("m") != a.fingerprint("other-model")


@pytest.mark.parametrize(
    "bad",
    [
        {"min_keep": 0.0},
        {"min_keep": 0.9, "max_keep": 0.5},
        {"sampler": "cma"},
        {"trials": 0},
        {"step": 2.0},
        {"search_metric": "acc"},
        {"search_window": 1},
        {"task_docs": 0},
        {"subtasks": 0},
        {"tasks": ["arc_easy"], "task_docs": {"hellaswag": 10, "default": 5}},
        {"tasks": ["arc_easy", "mmlu"], "report_docs": {"mmlu": 50}},
        {"tasks": ["arc_easy"], "task_docs": {"arc_easy": "many"}},
    ],
)
def test_bad_specs_are_one_line_errors(bad: dict[str, object]) -> None:
    with pytest.raises(FrontierError):
        StudySpec.from_dict(bad)


def test_per_task_document_counts_from_a_toml_table(tmp_path: Path) -> None:
    from objectives.tasks import docs_for

    path = tmp_path / "s.toml"
    path.write_text(
        'tasks = ["arc_easy", "truthfulqa_mc2"]\nsubtasks = 3\n'
        "task_docs = { default = 60, truthfulqa_mc2 = 20 }\nreport_docs = 100\n"
    )
    spec = StudySpec.from_toml(path)
    assert spec.subtasks == 3 and spec.report_docs == 100
    assert docs_for(spec.task_docs, "arc_easy") == 60
    assert docs_for(spec.task_docs, "truthfulqa_mc2") == 20
    assert spec.to_dict()["task_docs"] == {"default": 60, "truthfulqa_mc2": 20}
    assert spec.fingerprint("m") != spec.replace(task_docs=60).fingerprint("m")
    with pytest.raises(FrontierError, match="no document count"):
        docs_for({"arc_easy": 5}, "hellaswag")


def test_task_settings_reach_the_task_objectives(tmp_path: Path) -> None:
    from frontier.cli import build_parser, spec_from_args
    from frontier.search.context import _tasks_objective

    path = tmp_path / "s.toml"
    path.write_text(
        'tasks = ["arc_easy", "mmlu"]\n'
        "task_docs = { default = 30, mmlu = 20 }\nreport_docs = { default = 90 }\n"
    )
    args = build_parser().parse_args(["find", "--spec", str(path), "--subtasks", "4"])
    spec = spec_from_args(args)
    search = _tasks_objective(spec, role="search")
    report = _tasks_objective(spec, role="report")
    assert search.subtasks == report.subtasks == 4  # type: ignore[attr-defined]
    assert search.n_docs == {"default": 30, "mmlu": 20}  # type: ignore[attr-defined]
    assert report.n_docs == {"default": 90}  # type: ignore[attr-defined]


TASKS = {"arc_easy", "hellaswag"}  # clear of chance on the built-in models


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parents[3] / "studies").glob("*.toml")), ids=lambda p: p.name
)
def test_committed_study_specs_load(path: Path) -> None:
    spec = StudySpec.from_toml(path)
    assert path.stem == spec.model  # one spec per model, named after it
    assert "ppl<2.0" in spec.slos
    floors = {s.split(">=")[0] for s in spec.slos if ">=" in s}
    # the 1.5B study is the perplexity SLO alone (a CPU machine's hours); the others add
    # floors on the tasks they measure
    wanted = set() if spec.model == "qwen2.5-coder-1.5b" else TASKS
    assert floors == set(spec.tasks) >= wanted and bool(floors) == bool(wanted)


def test_fields_added_later_keep_old_fingerprints_and_old_meaning() -> None:
    from frontier.study.spec import LEGACY_VALUES

    old = StudySpec(criterion="activation", **LEGACY_VALUES)  # a study stored before them
    settings = old.measured_settings()
    assert not set(LEGACY_VALUES) & set(settings)
    new = StudySpec().measured_settings()  # the new defaults are recorded
    assert new["refit"] is True and new["confidence"] == 0.9
    assert old.fingerprint("m") != StudySpec(criterion="activation").fingerprint("m")
    stored = {k: v for k, v in old.to_dict().items() if k not in LEGACY_VALUES}
    again = StudySpec.from_dict({**LEGACY_VALUES, **stored})
    assert again.refit is False and again.fingerprint("m") == old.fingerprint("m")
    assert again.early_stop is False and StudySpec().early_stop  # old studies ran every trial


def test_refit_and_compensation_exclude_each_other() -> None:
    with pytest.raises(FrontierError, match="subsumes"):
        StudySpec(refit=True, compensate=True)
    assert StudySpec(refit=False, compensate=True).compensate
    assert StudySpec.from_dict({"check_texts": "file:x.txt"}).check_texts == ("file:x.txt",)


def test_device_and_dtype_are_measured_settings_by_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    gpu0 = StudySpec(device="cuda:0", dtype="bf16")
    # another GPU of the same kind measures the same: workers on cuda:1 join the study
    assert gpu0.fingerprint("m") == StudySpec(device="cuda:1", dtype="bf16").fingerprint("m")
    assert gpu0.fingerprint("m") == StudySpec(device="auto", dtype="auto").fingerprint("m")
    assert gpu0.measured_settings()["device"] == "cuda"
    assert gpu0.fingerprint("m") != StudySpec(device="cuda:0", dtype="fp16").fingerprint("m")
    assert gpu0.fingerprint("m") != StudySpec(device="cpu", dtype="bf16").fingerprint("m")
    assert StudySpec().resolved() == StudySpec(device="cuda:0", dtype="bf16")
    # the CPU in fp32 is what every study stored before the fields measured on
    legacy = StudySpec(device="cpu", dtype="fp32").measured_settings()
    assert "device" not in legacy and "dtype" not in legacy
    assert StudySpec(device="cpu", dtype="float32").dtype == "fp32"
    with pytest.raises(FrontierError, match="unknown device 'gpu'"):
        StudySpec(device="gpu")
    with pytest.raises(FrontierError, match="unknown dtype"):
        StudySpec.from_dict({"dtype": "int4"})


@pytest.mark.parametrize("metric", ["ppl", "kl"])
def test_the_search_signal_reads_strided_windows_and_old_studies_their_first_tokens(
    metric: str,
) -> None:
    from frontier.search.context import search_objective
    from frontier.study.spec import LEGACY_VALUES

    new = search_objective(StudySpec(search_metric=metric))  # type: ignore[arg-type]
    assert new.name == metric
    assert new.strided and new.seq_len == 256 and new.n_tokens == 2048  # type: ignore[attr-defined]
    assert new.role == "search"  # type: ignore[attr-defined]
    small = search_objective(StudySpec(search_metric=metric, search_tokens=64))  # type: ignore[arg-type]
    assert small.seq_len == 64  # type: ignore[attr-defined]  # one window, never more tokens
    old = StudySpec(search_metric=metric, seq_len=512, **LEGACY_VALUES)  # type: ignore[arg-type]
    legacy = search_objective(old)
    assert not legacy.strided and legacy.seq_len == 512  # type: ignore[attr-defined]
    assert "search_window" not in old.measured_settings()
    assert StudySpec().measured_settings()["search_window"] == 256
