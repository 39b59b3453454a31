"""What the tasks objective (:mod:`objectives.tasks`) records of how it measures (its
protocol), and what it warns a user of (a task its unpruned model scores near chance on)."""

from __future__ import annotations

from typing import Any

from frontier.data.mirror import lm_eval_version
from frontier.data.tasks import BENCHMARKS
from frontier.stats import near_chance
from objectives._tasks_scores import _mean

# ``obj`` below is a :class:`objectives.tasks.TaskAccuracy` (which imports this module)
TaskAccuracy = Any


def tasks_protocol(obj: TaskAccuracy) -> dict[str, Any]:
    """Everything a reader needs to compare the objective's figures with another's."""
    out: dict[str, Any] = {
        "objective": obj.name,
        "metric": "mean over tasks of accuracy / unpruned accuracy "
        "(1 + accuracy where the unpruned accuracy is 0)",
        "lm_eval_version": lm_eval_version(),
        "tasks": list(obj.tasks),
        "role": obj.role,
        "seed": obj.seed,
        "search_pool": obj.search_pool,
        "n_docs_requested": obj.n_docs,
        "subtasks_requested": obj.subtasks,
        "batch_size": obj.batch_size,
        "scorer": obj.scorer,
        "data": "hub" if obj.use_hub else "offline mirror",
        "bootstrap_iters": 0,
        "confidence": obj.confidence,
        "interval": "paired over documents: adjusted Wald on the log retention "
        "(two discordant pseudo-documents added; frontier.stats)",
    }
    if obj.final_looks:
        out["final_looks"] = {
            "first_docs": obj.first_docs,
            "max_docs": obj.n_docs,
            "floors": [str(f) for f in obj.floors],
            "rule": "looks from first_docs (or up to twice as many) doubling to max_docs "
            "(none: every report document), the last ending there; the next look while "
            "a floor is undecided at 1 - (1 - confidence) / looks",
        }
    if obj.adaptive:
        out["adaptive"] = {
            "first_docs": obj.n_docs,
            "max_docs": obj.max_docs,
            "floors": [str(f) for f in obj.floors],
            "rule": "while a floor is undecided at 1 - (1 - confidence) / looks, the "
            "task's documents double (seeded order, search pool), up to max_docs",
        }
    if obj._digest is not None:
        out["metric_per_task"] = dict(obj._metrics)
        out["num_fewshot"] = dict(sorted(obj._fewshot.items()))
        out["docs"] = {leaf: len(idx) for leaf, idx in sorted(obj._samples.items())}
        out["subtasks"] = {n: obj._leaves[n] for n in obj.tasks if obj._leaves[n] != [n]}
        out["docs_digest"] = obj._digest
    notes = [BENCHMARKS[t].note for t in obj.tasks if t in BENCHMARKS]
    if not obj.use_hub and any(notes):
        # the key predates other notes; only TruthfulQA (a subset) has one
        out["truthfulqa"] = next(n for n in notes if n)
    return out


def near_chance_warnings(obj: TaskAccuracy) -> list[str]:
    """One line per task the unpruned model scores within two standard errors of chance
    on (nothing before the baseline is measured)."""
    if obj.baseline is None:
        return []
    out = []
    for name in obj.tasks:
        chance, docs = obj.chance.get(name), obj.baseline_docs.get(name, {})
        acc = _mean(list(docs.values())) if docs else obj.baseline[name]
        if chance is not None and near_chance(acc, chance, len(docs)):
            out.append(
                f"{name}: the unpruned model scores {acc:.1%} on {len(docs)} "
                f"{obj.role} documents, within two standard errors of chance "
                f"({chance:.1%}); a floor on it tests noise"
            )
    return out


__all__ = ["near_chance_warnings", "tasks_protocol"]
