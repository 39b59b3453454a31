"""The lm-eval task objective: document selection, and evaluation of an in-memory model.

Tiny random models check logic (finite, reproducible, per-task details); the slow test
checks faithfulness: our figure for SmolLM2-135M equals lm-eval's own command line on
the same saved model folder and the same documents.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from frontier.data.mirror import build_mirror
from frontier.errors import FrontierError
from frontier.models import LoadedModel
from frontier.testing import tiny_loaded
from objectives import create
from objectives.tasks import TaskAccuracy, _retained, doc_order, select_docs, select_subtasks


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A mirror of the tasks used here, with datasets' Arrow cache kept out of ~/.cache."""
    import datasets

    root = tmp_path_factory.mktemp("tasks_objective")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", root / "hf_datasets")
        yield build_mirror(root / "lmeval", tasks=["arc_easy", "hellaswag", "mmlu"])


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Baselines are cached under FRONTIER_HOME; keep each test's to itself.
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))
    torch.set_num_threads(1)


# --------------------------------------------------------------------------- documents


@pytest.mark.parametrize("n", [2, 3, 10, 299, 570, 2376])
@pytest.mark.parametrize("n_search, n_report", [(1, 1), (5, None), (None, 7), (None, None)])
def test_search_and_report_documents_never_overlap(
    n: int, n_search: int | None, n_report: int | None
) -> None:
    search = select_docs("t", n, role="search", n_docs=n_search, seed=3)
    report = select_docs("t", n, role="report", n_docs=n_report, seed=3)
    assert not set(search) & set(report)
    assert search == sorted(search) and report == sorted(report)
    assert all(0 <= i < n for i in search + report)
    if n_search is None and n_report is None:
        assert sorted(search + report) == list(range(n))  # pool + remainder = everything


def test_document_choice_is_deterministic_and_seeded() -> None:
    a = select_docs("arc_easy", 2376, role="search", n_docs=50, seed=0)
    assert a == select_docs("arc_easy", 2376, role="search", n_docs=50, seed=0)
    assert a != select_docs("arc_easy", 2376, role="search", n_docs=50, seed=1)
    assert a != select_docs("hellaswag", 2376, role="search", n_docs=50, seed=0)
    # A larger search sample extends a smaller one (same permutation prefix).
    assert set(a) <= set(select_docs("arc_easy", 2376, role="search", n_docs=100, seed=0))
    # Pinned: string-seeded random.Random is stable across runs, hosts and Python versions,
    # so a stored protocol names the same documents tomorrow.
    assert doc_order("arc_easy", 10, 0) == [3, 1, 7, 8, 4, 5, 2, 9, 6, 0]


def test_search_pool_caps_and_errors() -> None:
    # At most half of a small task goes to the search pool, so report still has documents.
    assert len(select_docs("t", 100, role="search", n_docs=None, seed=0)) == 50
    assert len(select_docs("t", 100, role="report", n_docs=None, seed=0)) == 50
    assert len(select_docs("t", 10_000, role="search", n_docs=None, seed=0)) == 250
    with pytest.raises(FrontierError, match="no documents"):
        select_docs("t", 1, role="search", n_docs=None, seed=0)
    with pytest.raises(FrontierError, match="positive"):
        select_docs("t", 10, role="search", n_docs=0, seed=0)


def test_subtask_choice() -> None:
    names = [f"mmlu_{i}" for i in range(57)]
    picked = select_subtasks("mmlu", names, 5, seed=0)
    assert len(picked) == 5 and picked == select_subtasks("mmlu", names, 5, seed=0)
    assert picked != select_subtasks("mmlu", names, 5, seed=1)
    assert select_subtasks("mmlu", names, None, seed=0) == sorted(names)


def test_retained_ratio_stays_finite() -> None:
    assert _retained(0.3, 0.6) == 0.5
    assert _retained(0.0, 0.0) == 1.0  # the unpruned model's own figure
    assert _retained(0.25, 0.0) == 1.25  # finite, and still rising with accuracy


# --------------------------------------------------------------------------- objective


def test_objective_on_a_tiny_model(mirror: Path) -> None:
    obj = create("tasks", tasks=["arc_easy"], n_docs=6, mirror=str(mirror), batch_size=4)
    assert isinstance(obj, TaskAccuracy)
    lm = tiny_loaded("llama")
    obj.prepare(lm)
    first = obj.evaluate(lm)
    again = obj.evaluate(lm)
    assert first.name == "tasks" and first.direction == "maximize"
    assert math.isfinite(first.value) and again.value == first.value
    assert first.raw == first.baseline  # the unpruned model reproduces its baseline
    d = first.details["arc_easy"]
    assert d["metric"] == "acc_norm" and d["n_docs"] == 6 and 0.0 <= d["acc"] <= 1.0
    json.dumps(first.to_dict())

    # The wrapper is built once and sees in-place weight changes: the log-likelihoods it
    # scores the answers with change when the weights do (and only then).
    wrapper = obj._lm
    assert wrapper is not None and wrapper.model is lm.model
    scored: list[list[float]] = []
    inner = wrapper.loglikelihood

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = inner(*args, **kwargs)
        scored.append([float(ll) for ll, _greedy in out])
        return out

    wrapper.loglikelihood = spy  # type: ignore[method-assign]
    obj.evaluate(lm)
    obj.evaluate(lm)
    with torch.no_grad():
        lm.model.lm_head.weight.mul_(-1.0)
    flipped = obj.evaluate(lm)
    assert obj._lm is wrapper and math.isfinite(flipped.value)
    assert len(scored) == 3 and len(scored[0]) >= 6 * 2  # every answer of every document
    assert scored[1] == scored[0]
    assert all(a != b for a, b in zip(scored[2], scored[0], strict=True))
    assert flipped.details["arc_easy"]["baseline"] == d["baseline"]

    proto = obj.protocol()
    json.dumps(proto)
    assert proto["lm_eval_version"] and proto["metric_per_task"] == {"arc_easy": "acc_norm"}
    assert proto["docs"] == {"arc_easy": 6} and proto["num_fewshot"] == {"arc_easy": 0}
    assert len(proto["docs_digest"]) == 32


def test_retention_is_paired_per_document_with_its_interval(mirror: Path) -> None:
    obj = TaskAccuracy(["arc_easy", "mmlu"], n_docs=12, subtasks=2, mirror=mirror, confidence=0.8)
    lm = tiny_loaded("llama")
    obj.prepare(lm)
    # per-document scores reproduce lm-eval's own figure (a group's: micro-averaged)
    for name in ("arc_easy", "mmlu"):
        docs = list(obj.baseline_docs[name].values())
        assert len(docs) == 12 and set(docs) <= {0.0, 1.0}
        assert sum(docs) / len(docs) == pytest.approx(obj.baseline[name])
    same = obj.evaluate(lm).details["arc_easy"]
    assert same["gained"] == same["lost"] == 0 and same["confidence"] == 0.8
    assert same["ci"][0] < 1.0 < same["ci"][1]
    assert same["acc_ci"][0] <= same["acc"] <= same["acc_ci"][1]
    with torch.no_grad():
        lm.model.lm_head.weight.mul_(-1.0)
    flipped = obj.evaluate(lm).details["arc_easy"]
    now = obj._outcomes()["arc_easy"]["docs"]
    before = obj.baseline_docs["arc_easy"]
    assert set(now) == set(before)  # the same documents, paired by key
    assert flipped["gained"] == sum(now[k] > before[k] for k in now)
    assert flipped["lost"] == sum(now[k] < before[k] for k in now)
    assert flipped["gained"] + flipped["lost"] > 0
    assert (flipped["ci"][1] - flipped["ci"][0]) > (same["ci"][1] - same["ci"][0])
    assert obj.protocol()["confidence"] == 0.8


def test_a_task_the_model_scores_near_chance_on_is_warned_about(mirror: Path) -> None:
    obj = TaskAccuracy(["arc_easy", "hellaswag"], n_docs=10, mirror=mirror)
    assert obj.warnings() == []  # nothing known before prepare
    obj.prepare(tiny_loaded("llama"))  # a random model: chance everywhere
    lines = obj.warnings()
    assert [line.split(":")[0] for line in lines] == ["arc_easy", "hellaswag"]
    assert obj.chance["hellaswag"] == pytest.approx(0.25)  # four endings each
    assert "25.0%" in lines[1] and "chance" in lines[1]
    # a baseline well above chance is not warned about
    obj.baseline_docs = {n: dict.fromkeys(d, 1.0) for n, d in obj.baseline_docs.items()}
    assert obj.warnings() == []


def test_adaptive_documents_grow_only_while_a_floor_is_undecided(mirror: Path) -> None:
    from frontier.study.slo import parse_slo

    lm = tiny_loaded("llama")

    def run(floor: str) -> dict[str, Any]:
        obj = TaskAccuracy(
            ["arc_easy"], n_docs=8, max_docs=32, floors=[parse_slo(floor)], mirror=mirror
        )
        obj.prepare(lm)
        assert len(obj.baseline_docs["arc_easy"]) == 32  # the baseline covers every look
        return dict(obj.evaluate(lm).details["arc_easy"])

    # the unpruned model against itself: retention 1 on any documents, but 8 documents
    # cannot show it is >= 90%; the documents double until the cap
    near = run("arc_easy>=90%")
    assert near["looks"] == 3 and near["n_docs"] == 32
    assert near["ci"][0] < 0.9  # still undecided at the cap: the search keeps the trial
    # far from a floor it is decided at the first look, passing or failing
    far_pass = run("arc_easy>=10%")
    assert far_pass["looks"] == 1 and far_pass["n_docs"] == 8 and far_pass["ci"][0] >= 0.1
    far_fail = run("arc_easy>=0.99")  # an absolute floor a random model is far below
    assert far_fail["looks"] == 1 and far_fail["acc_ci"][1] < 0.99
    # each look is judged at 1 - (1 - confidence) / 3 (three looks at most)
    assert near["confidence"] == pytest.approx(1 - 0.1 / 3)
    # the documents of three looks are the first 32 of the seeded order: the fixed
    # objective with 32 documents scores the same accuracy on them
    fixed = TaskAccuracy(["arc_easy"], n_docs=32, mirror=mirror)
    fixed.prepare(lm)
    assert near["acc"] == pytest.approx(fixed.evaluate(lm).details["arc_easy"]["acc"])
    with pytest.raises(FrontierError, match="search role only"):
        TaskAccuracy(["arc_easy"], role="report", max_docs=32, mirror=mirror)


def test_search_and_report_objectives_use_disjoint_documents(mirror: Path) -> None:
    tasks = ["arc_easy", "hellaswag"]
    search = TaskAccuracy(tasks, role="search", n_docs=20, mirror=mirror, seed=7).doc_indices()
    report = TaskAccuracy(tasks, role="report", n_docs=40, mirror=mirror, seed=7).doc_indices()
    for task in ("arc_easy", "hellaswag"):
        assert len(search[task]) == 20 and len(report[task]) == 40
        assert not set(search[task]) & set(report[task])


def test_per_task_document_counts(mirror: Path) -> None:
    counts = {"default": 7, "hellaswag": 3}
    docs = TaskAccuracy(["arc_easy", "hellaswag"], n_docs=counts, mirror=mirror).doc_indices()
    assert {k: len(v) for k, v in docs.items()} == {"arc_easy": 7, "hellaswag": 3}
    with pytest.raises(FrontierError, match="no document count"):
        TaskAccuracy(["arc_easy"], n_docs={"hellaswag": 3}, mirror=mirror).doc_indices()


def test_mmlu_group_with_a_seeded_subset_of_subjects(mirror: Path) -> None:
    # n_docs counts the group's documents: 5 over 2 subjects is 3 each (rounded up)
    obj = TaskAccuracy(tasks=["mmlu"], n_docs=5, subtasks=2, mirror=mirror, batch_size=8)
    lm = tiny_loaded("llama")
    obj.prepare(lm)
    m = obj.evaluate(lm)
    assert m.details["mmlu"]["metric"] == "acc" and m.details["mmlu"]["n_docs"] == 6
    assert math.isfinite(m.value)
    proto = obj.protocol()
    assert len(proto["subtasks"]["mmlu"]) == 2 and list(proto["docs"].values()) == [3, 3]


def test_unknown_task_is_a_one_line_error(mirror: Path) -> None:
    with pytest.raises(FrontierError, match="cannot load tasks"):
        TaskAccuracy(tasks=["no_such_task"], mirror=mirror).doc_indices()
    with pytest.raises(FrontierError, match="role"):
        create("tasks", role="train")


# --------------------------------------------------------------------------- faithfulness


def _smollm2() -> LoadedModel:
    from frontier.models import load_model

    return load_model("smollm2-135m")


@pytest.mark.slow
def test_matches_lm_eval_command_line_on_smollm2(mirror: Path, tmp_path: Path) -> None:
    lm = _smollm2()
    assert lm.local_dir
    obj = TaskAccuracy(
        tasks=["arc_easy", "hellaswag"], n_docs=20, mirror=mirror, batch_size=8, seed=0
    )
    obj.prepare(lm)
    ours = obj.evaluate(lm)
    samples = obj.doc_indices()

    out = tmp_path / "cli"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    import datasets

    env["HF_DATASETS_CACHE"] = str(datasets.config.HF_DATASETS_CACHE)
    args = (
        f"run --model hf --model_args pretrained={lm.local_dir},dtype=float32 "
        f"--tasks arc_easy hellaswag --include_path {mirror / 'tasks'} --device cpu "
        f"--batch_size 8 --output_path {out} --log_samples"
    ).split()
    cmd = [sys.executable, "-m", "lm_eval", *args, "--samples", json.dumps(samples)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    for task in ("arc_easy", "hellaswag"):
        assert results[task]["acc_norm,none"] == ours.details[task]["acc"]
        assert results[task]["acc_norm,none"] == ours.details[task]["baseline"]
        logged = [
            json.loads(line)
            for line in next(out.rglob(f"samples_{task}_*.jsonl")).read_text().splitlines()
        ]
        assert sorted(s["doc_id"] for s in logged) == samples[task]
