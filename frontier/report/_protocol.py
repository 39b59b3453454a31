"""The report's account of how the numbers were measured, and how fine the task figures are."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from frontier.data.tasks import chance_levels
from frontier.report._markdown import _flatten, _num, _pct, _table
from frontier.stats import near_chance
from frontier.study.summary import StudySummary


def _protocol_section(summary: StudySummary) -> list[str]:
    rows: list[tuple[str, str]] = [
        ("study", summary.name),
        ("model", summary.model),
        ("unpruned perplexity (search text)", _num(summary.baseline_ppl)),
        ("unpruned loss (search text, nats/token)", _num(summary.baseline_loss, ".4f")),
        *((f"unpruned accuracy: {t}", _num(a, ".4f")) for t, a in summary.baseline_tasks.items()),
        ("trials with search figures", str(len(summary.points))),
        ("Pareto points re-measured at report fidelity", str(len(summary.final))),
    ]
    rows += list(_flatten(summary.protocol))
    slos = [f"- `{s}`: {s.describe()}" for s in summary.parsed_slos()] or ["- (none)"]
    return [
        "## Protocol",
        "",
        *_table(["setting", "value"], rows),
        "SLOs (all must hold):",
        "",
        *slos,
        "",
    ]


#: Accuracy of uniform guessing, where the task fixes it (from the task registry).
CHANCE: dict[str, float] = chance_levels()


def task_docs(protocol: Mapping[str, Any], task: str) -> int | None:
    """Documents a task (or group: the sum over its subtasks) was scored on, per protocol."""
    docs = protocol.get("docs") if isinstance(protocol, Mapping) else None
    if not isinstance(docs, Mapping):
        return None
    leaves = (protocol.get("subtasks") or {}).get(task, [task])
    counts = [docs[leaf] for leaf in leaves if isinstance(docs.get(leaf), int)]
    return sum(counts) if counts else None


def _resolution_section(summary: StudySummary) -> list[str]:
    """How coarse each task's figures are: one document's worth, the sampling error, and
    whether the unpruned model is distinguishable from guessing at all."""
    if not summary.baseline_tasks:
        return []
    stages = [("search", summary.protocol.get("tasks_search") or {}, summary.baseline_tasks)]
    report_proto = (summary.protocol.get("report") or {}).get("tasks") or {}
    if summary.baseline_tasks_final:
        stages.append(("report", report_proto, summary.baseline_tasks_final))
    rows: list[list[str]] = []
    near: set[str] = set()
    for task in summary.task_names:
        for stage, proto, base in stages:
            n, acc = task_docs(proto, task), base.get(task)
            if n is None or acc is None:
                continue
            se = math.sqrt(max(acc * (1 - acc), 1e-12) / n)
            chance = CHANCE.get(task)
            flag = chance is not None and near_chance(acc, chance, n)
            near |= {task} if flag else set()
            rows.append(
                [
                    task,
                    stage,
                    str(n),
                    _num(acc),
                    _num(se),
                    _num(chance) if chance is not None else "n/a",
                    _pct(1 / (n * acc)) if acc > 0 else "n/a",
                    "**within 2 SE of chance**" if flag else "",
                ]
            )
    if not rows:
        return []
    lines = [
        "## How fine the task figures are",
        "",
        "Accuracies are means over a sample of documents: the standard error (SE) of the "
        "unpruned accuracy, and the retention one document changes, say how large a "
        "difference the search can see. A retention floor on a task whose unpruned accuracy "
        "is within two SEs of guessing tests noise, not the model. (For TruthfulQA MC2, a "
        "score in [0, 1] per question, the binomial SE shown is an upper bound.)",
        "",
        *_table(
            [
                "task",
                "stage",
                "documents",
                "unpruned accuracy",
                "SE",
                "chance",
                "retention one document can move",
                "",
            ],
            rows,
        ),
    ]
    if near:
        lines += [
            f"> **Note:** {', '.join(sorted(near))}: the unpruned model is not clearly "
            "above chance on these documents; read their retention and floors as noise.",
            "",
        ]
    return lines
