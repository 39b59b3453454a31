"""The figures of the tasks objective (:mod:`objectives.tasks`) from per-document scores.

lm-eval's logged samples become per-document scores (``"leaf/index"`` -> score); the
pruned model's scores, paired by document with the unpruned model's, give a task's
retention, its paired interval and its accuracy interval (:mod:`frontier.stats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from frontier.stats import accuracy_interval, retention_interval


def _per_doc(
    samples: Mapping[str, list[dict[str, Any]]], leaves: Sequence[str], metric: str
) -> tuple[dict[str, float], float | None]:
    """The per-document scores of ``metric`` over ``leaves`` (``"leaf/index"`` -> score)
    and the mean chance level of those documents (1 / the number of choices) where every
    score is 0 or 1, else None."""
    scores: dict[str, float] = {}
    choices: list[int] = []
    for leaf in leaves:
        rows = [r for r in samples.get(leaf, []) if r.get("filter", "none") == "none"]
        for row in sorted(rows, key=lambda r: int(r["doc_id"])):
            scores[f"{leaf}/{int(row['doc_id'])}"] = float(row[metric])
            choices.append(len(row.get("arguments") or ()))
    binary = all(s in (0.0, 1.0) for s in scores.values())
    chance = None
    if scores and binary and all(c > 1 for c in choices):
        chance = sum(1 / c for c in choices) / len(choices)
    return scores, chance


def _doc_choices(
    samples: Mapping[str, list[dict[str, Any]]], leaves: Sequence[str]
) -> dict[str, int]:
    """Each document's number of choices (``"leaf/index"`` -> count), as :func:`_per_doc`
    counts them."""
    return {
        f"{leaf}/{int(row['doc_id'])}": len(row.get("arguments") or ())
        for leaf in leaves
        for row in samples.get(leaf, [])
        if row.get("filter", "none") == "none"
    }


def paired(
    metric: str,
    acc: float,
    base: float,
    pruned: Sequence[float],
    unpruned: Sequence[float],
    level: float,
) -> dict[str, Any]:
    """One task's figures: ``acc`` against the unpruned ``base``, and the intervals at
    ``level`` of the per-document scores ``pruned`` and ``unpruned`` (paired by position),
    with the discordant documents (``gained``, ``lost``)."""
    ci = retention_interval(pruned, unpruned, level)
    acc_ci = accuracy_interval(pruned, level)
    return {
        "metric": metric,
        "acc": acc,
        "baseline": base,
        "retained": _retained(acc, base),
        "n_docs": len(pruned),
        "ci": [ci.low, ci.high],
        "acc_ci": [acc_ci.low, acc_ci.high],
        "confidence": level,
        "gained": sum(1 for a, b in zip(pruned, unpruned, strict=True) if a > b),
        "lost": sum(1 for a, b in zip(pruned, unpruned, strict=True) if a < b),
    }


def _retained(acc: float, base: float) -> float:
    """acc / base. Where the unpruned model scored 0 (tiny or random models on a few
    documents) the ratio is undefined; 1 + acc keeps it finite, 1 at the baseline, and
    still rising with accuracy, so a search is neither stopped nor misled by it."""
    if base > 0:
        return acc / base
    return 1.0 + acc


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
