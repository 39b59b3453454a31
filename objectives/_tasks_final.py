"""Reading task documents in looks, and the unpruned model's scores on them cached per look.

The tasks objective (:mod:`objectives.tasks`) reads each task's documents in looks
(:mod:`objectives._tasks_looks`): at search time with every look's unpruned scores known
from the start (the search pool is small), in the final stage with them scored when a
look first needs them, on the unpruned model, and kept on disk (:func:`doc_scores`).

The disk cache holds one file per look of one leaf task: the unpruned model's score of
each document the look reads, and its number of choices (for the chance level). Its key
is the model's fingerprint, the task's configuration (lm-eval's version, the metric, the
few-shot setting, the scorer and its batch size, where the data came from, the code
that computes the scores) and the documents (their indices and a digest of their
content). Every candidate of a study reads the same looks, so the unpruned model scores
each look once per study, and a later study of the same model and tasks reads them too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from frontier.cache import code_digest, read_cached, write_cached
from frontier.data.mirror import lm_eval_version
from frontier.stats import FUTILITY, predictive_pass
from frontier.study.slo import TaskScore, TrialMetrics
from objectives._lm import BASELINE_PROTOCOL
from objectives._tasks_lmeval import FEWSHOT_SEED, docs_digest
from objectives._tasks_scores import _doc_choices, _mean, _per_doc

# ``obj`` below is a :class:`objectives.tasks.TaskAccuracy` (which imports this module)
TaskAccuracy = Any

#: Documents (per leaf, sorted) -> each one's score (``"leaf/index"`` -> score).
Score = Callable[[dict[str, list[int]]], dict[str, float]]
#: Documents (per leaf, sorted) -> each one's (score, number of choices).
Rows = Callable[[dict[str, list[int]]], dict[str, tuple[float, int]]]
#: Makes the model unpruned (False) or pruned again (True) between looks.
Switch = Callable[[bool], None]

CACHE_FOLDER = "baselines"
CACHE_KIND = "task-docs"


def unpruned_scores(
    obj: TaskAccuracy, samples: dict[str, list[int]], switch: Switch | None
) -> None:
    """Make the unpruned model's scores of ``samples`` known to ``obj`` (its
    ``baseline_docs``): from memory, the disk cache, or scored now, the model made
    unpruned by ``switch(False)`` for it (None: it is unpruned now) and pruned again after."""
    todo = {
        leaf: idx
        for leaf, idx in samples.items()
        if any(f"{leaf}/{i}" not in obj._choices for i in idx)
    }
    if not todo:
        return

    def compute(missing: dict[str, list[int]]) -> dict[str, tuple[float, int]]:
        if switch is not None:
            switch(False)
        try:
            return obj._leaf_rows(missing)
        finally:
            if switch is not None:
                switch(True)

    for key, (score, choices) in doc_scores(obj, todo, cache_config(obj), compute).items():
        obj.baseline_docs.setdefault(obj._owner(key.split("/", 1)[0]), {})[key] = score
        obj._choices[key] = choices


def cache_config(obj: TaskAccuracy) -> dict[str, Any]:
    """The per-look cache's key but the documents: the model, the tasks' settings, the
    code that scores them."""
    scorer = sys.modules[type(obj._lm).__module__]  # ours, or lm-eval's HFLM
    return {
        "model": obj._model_fingerprint,
        "lm_eval_version": lm_eval_version(),
        "scorer": obj.scorer,
        "batch_size": obj.batch_size,
        "data": "hub" if obj.use_hub else "offline mirror",
        "fewshot_seed": FEWSHOT_SEED,
        "baseline_protocol": BASELINE_PROTOCOL,
        "code": code_digest((type(obj)._leaf_rows, _per_doc, _doc_choices, scorer)),
    }


def chance(scores: list[float], choices: list[int]) -> float | None:
    """The mean chance level (1 / choices) of documents scored 0 or 1, else None."""
    if scores and all(s in (0.0, 1.0) for s in scores) and all(c > 1 for c in choices):
        return sum(1 / c for c in choices) / len(choices)
    return None


def doc_scores(
    obj: TaskAccuracy,
    samples: Mapping[str, list[int]],
    config: Mapping[str, Any],
    compute: Rows,
) -> dict[str, tuple[float, int]]:
    """The unpruned model's (score, choices) of every document in ``samples`` (one look's
    documents per leaf), read from the disk cache where there, else ``compute``d (once,
    for every leaf missing) and stored. ``config``: the task configuration of the key."""
    out: dict[str, tuple[float, int]] = {}
    missing: dict[str, list[int]] = {}
    keys: dict[str, dict[str, Any]] = {}
    for leaf, indices in samples.items():
        keys[leaf] = {
            **config,
            "leaf": leaf,
            "metric": obj._metrics[obj._owner(leaf)],
            "num_fewshot": obj._fewshot[leaf],
            "docs": list(indices),
            "docs_digest": docs_digest(obj._task_dict or {}, {leaf: list(indices)}),
        }
        found = read_cached(CACHE_FOLDER, CACHE_KIND, keys[leaf])
        if isinstance(found, dict) and len(found) == len(indices):
            out.update({k: (float(v[0]), int(v[1])) for k, v in found.items()})
        else:
            missing[leaf] = list(indices)
    if missing:
        rows = compute(missing)
        for leaf in missing:
            mine = {k: v for k, v in rows.items() if k.split("/", 1)[0] == leaf}
            write_cached(
                CACHE_FOLDER, CACHE_KIND, keys[leaf], {k: list(v) for k, v in mine.items()}
            )
            out.update(mine)
    return out


def figures(
    obj: TaskAccuracy, name: str, scores: Mapping[str, float], looks: int
) -> dict[str, Any]:
    """Task ``name``'s figures on the documents ``looks`` looks read (``scores``: the
    pruned model's, by document), with the documents named: per leaf, how many of its
    seeded order (``docs``), and the looks there could be (``max_looks``)."""
    now = {k: scores[k] for k in obj._looks.keys(name, looks)}
    acc = _mean(list(now.values()))
    base = _mean([obj.baseline_docs[name][k] for k in now])
    out = obj._paired(name, acc, base, now, looks)
    out["docs"] = {leaf: obj._looks.read_of(leaf, looks) for leaf in obj._leaves[name]}
    out["max_looks"] = obj._looks.max_looks(name)
    return out


def read_looks(
    obj: TaskAccuracy,
    score: Score,
    *,
    decide: bool,
    target: Mapping[str, int] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Score each task on its first look's documents; then, with ``decide``, read the
    next look of every task one of the objective's floors is undecided on, until each is
    decided or its documents are used up; without, read ``target[name]`` looks (default
    one). ``score`` scores the documents of a look (their unpruned scores must be known
    once it returns). Returns each task's accuracy and figures on the documents read;
    ``progress`` is told each look's figures."""
    scores: dict[str, float] = {}
    looks = dict.fromkeys(obj.tasks, 1)
    todo = list(obj.tasks)
    details: dict[str, Any] = {}
    while todo:
        samples = obj._looks.fresh({name: looks[name] for name in todo})
        if samples:
            scores.update(score(samples))
        for name in todo:
            details[name] = figures(obj, name, scores, looks[name])
            if progress is not None:
                progress(_look_line(name, details[name]))
        if decide:
            metrics = TrialMetrics(tasks={n: TaskScore.from_details(d) for n, d in details.items()})
            undecided = {
                n
                for f in obj.floors
                if f.decision(metrics) == "undecided"
                for n in (obj.tasks if f.metric == "tasks" else [f.metric])
                if n in details
            }
            todo = [n for n in obj.tasks if n in undecided and looks[n] < obj._looks.max_looks(n)]
            reason = hopeless(obj, details, metrics)
            if reason is not None and todo:
                for name in todo:  # what more documents could not change
                    details[name]["stopped"] = reason
                if progress is not None:
                    progress(f"stopping the looks of {', '.join(todo)}: {reason}")
                todo = []
        else:
            todo = [
                n for n in todo if looks[n] < min((target or {}).get(n, 1), obj._looks.max_looks(n))
            ]
        for name in todo:
            looks[name] += 1
    return {n: float(d["acc"]) for n, d in details.items()}, details


def hopeless(obj: TaskAccuracy, details: Mapping[str, Any], metrics: TrialMetrics) -> str | None:
    """Why no more documents can make the candidate meet every floor, or None: a floor
    failed, or one on a single task is undecided and the documents left would decide it
    as met with a predictive probability below :data:`~frontier.stats.FUTILITY`
    (:func:`~frontier.stats.predictive_pass`). Floors on the mean over tasks only stop on a
    failure."""
    for f in obj.floors:
        verdict = f.decision(metrics)
        if verdict == "fail":
            return f"{f} failed"
        d = details.get(f.metric)
        if verdict != "undecided" or d is None or f.is_upper_bound:
            continue
        estimate = f.measured(replace(metrics, side="estimate"))
        low = f.measured(replace(metrics, side="pessimistic"))
        if estimate is None or low is None:
            continue
        n = int(d["n_docs"])
        total = len(obj._looks.keys(f.metric, obj._looks.max_looks(f.metric)))
        chance = predictive_pass(estimate, low, f.threshold, n, total, float(d["confidence"]))
        if chance < FUTILITY:
            if n >= total:
                return f"{f} is undecided on all {total:,} documents it may read"
            odds = f"{chance:.1%}" if chance >= 0.001 else "less than 0.1%"
            return (
                f"{f} is undecided on {n:,} documents, and the {total:,} it may read would "
                f"decide it as met with a predictive probability of {odds} (the looks stop "
                f"below {FUTILITY:.0%})"
            )
    return None


def _look_line(name: str, d: Mapping[str, Any]) -> str:
    low, high = d["ci"]
    return (
        f"{name}: look {d['looks']} of {d['max_looks']}, {d['n_docs']} documents: retained "
        f"{100 * d['retained']:.1f}% ({100 * low:.1f}-{100 * high:.1f}% at "
        f"{100 * d['confidence']:.1f}%)"
    )


__all__ = [
    "CACHE_KIND",
    "Rows",
    "Score",
    "Switch",
    "cache_config",
    "chance",
    "doc_scores",
    "figures",
    "hopeless",
    "read_looks",
    "unpruned_scores",
]
