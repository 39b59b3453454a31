"""lm-eval task accuracy, as the share of the unpruned model's accuracy that is retained.

The model is evaluated in memory through lm-eval's own ``HFLM`` wrapper and task
objects, so prompts, scoring and metrics are exactly lm-eval's; only the choice of
documents is ours. The wrapper and the tasks are built once in :meth:`prepare`; the
pruning engine changes the weights in place and the same wrapper sees the change.

Which documents are read is decided in :mod:`objectives._docs`; the facts about each
benchmark task (its standard metric, notes such as "a 299-question subset") come from
the engine's task registry, :mod:`frontier.data.tasks`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from frontier.data.mirror import lm_eval_version, task_manager
from frontier.data.tasks import BENCHMARKS
from frontier.errors import FrontierError
from frontier.models import LoadedModel
from frontier.stats import (
    DEFAULT_CONFIDENCE,
    accuracy_interval,
    near_chance,
    retention_interval,
)
from frontier.study.slo import SLO, TaskScore, TrialMetrics
from objectives._base import Measurement, Objective, not_prepared, register
from objectives._docs import (
    SEARCH_POOL,
    Role,
    doc_order,
    docs_for,
    ordered_docs,
    search_pool_size,
    select_docs,
    select_subtasks,
    share,
)
from objectives._lm import cached_baseline

# lm-eval's fewshot seed default in simple_evaluate; used so fewshot prompts match its CLI.
FEWSHOT_SEED = 1234

# --------------------------------------------------------------------------- objective


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence lm-eval's per-call info logs and datasets' progress bars, then restore them."""
    import datasets
    import lm_eval.api.task
    from tqdm import tqdm

    loggers = [logging.getLogger(n) for n in ("lm_eval", "datasets", "transformers")]
    levels = [log.level for log in loggers]
    bars_were_on = not datasets.utils.are_progress_bars_disabled()
    for log in loggers:
        log.setLevel(logging.ERROR)
    datasets.utils.disable_progress_bars()
    # Task.build_all_requests draws a progress bar per task per call, with no switch.
    with mock.patch.object(lm_eval.api.task, "tqdm", functools.partial(tqdm, disable=True)):
        try:
            yield
        finally:
            for log, level in zip(loggers, levels, strict=True):
                log.setLevel(level)
            if bars_were_on:
                datasets.utils.enable_progress_bars()


@register
class TaskAccuracy(Objective):
    """Mean over tasks of (accuracy now / accuracy of the unpruned model).

    ``tasks`` are lm-eval task or group names; each is scored with its standard metric
    (its row in :data:`frontier.data.tasks.BENCHMARKS`, else the first of
    ``acc_norm``, ``acc``, ``exact_match`` it has). ``n_docs`` documents per requested task, a
    group's split evenly over its subtasks (rounded up, at least one each), ``None`` for
    all of the role's documents; a mapping gives each task its own count (its key
    ``"default"`` covers the tasks it does not name). ``subtasks`` evaluates only a
    seeded choice of that many subtasks of each group (e.g. 10 MMLU subjects).
    ``mirror`` is the offline benchmark mirror (default location when None) unless
    ``use_hub``. ``num_fewshot`` overrides the tasks' defaults (0 for all served here).

    Every document is scored for the pruned and the unpruned model alike, so each task's
    retention comes with a paired interval at ``confidence`` (:mod:`frontier.stats`),
    and its accuracy with its own; both are in the measurement's details (``ci``,
    ``acc_ci``), with the discordant documents (``gained``, ``lost``).

    Adaptive documents (``max_docs``, search role): each task is first scored on its
    ``n_docs`` documents; while one of ``floors`` (the task SLOs) is undecided on them,
    the task's documents double, drawn in the seeded order from the search pool, up to
    ``max_docs``. A trial far from a floor stops at the first look; one near it gets
    more documents. Every look is judged at ``1 - (1 - confidence) / looks`` (the error
    of the repeated looks shared among them), and the documents each decision used are
    in the details (``n_docs``, ``looks``). The accuracies are then means over the
    documents used (a group's micro-averaged), for the pruned and the unpruned model on
    the same documents.
    """

    name = "tasks"
    direction = "maximize"

    def __init__(
        self,
        tasks: Sequence[str] = ("arc_easy",),
        n_docs: int | Mapping[str, int] | None = 100,
        role: Role = "search",
        seed: int = 0,
        batch_size: int = 8,
        mirror: str | Path | None = None,
        use_hub: bool = False,
        subtasks: int | None = None,
        search_pool: int = SEARCH_POOL,
        num_fewshot: int | None = None,
        confidence: float = DEFAULT_CONFIDENCE,
        max_docs: int | Mapping[str, int] | None = None,
        floors: Sequence[SLO] = (),
    ) -> None:
        if role not in ("search", "report"):
            raise FrontierError(f"role must be 'search' or 'report', got {role!r}")
        if isinstance(tasks, str):
            tasks = [t for t in tasks.split(",") if t]
        if not tasks:
            raise FrontierError("the tasks objective needs at least one task")
        self.tasks = list(dict.fromkeys(tasks))
        self.n_docs = dict(n_docs) if isinstance(n_docs, Mapping) else n_docs
        self.role: Role = role
        self.seed = seed
        self.batch_size = batch_size
        self.mirror = Path(mirror) if mirror is not None else None
        self.use_hub = use_hub
        self.subtasks = subtasks
        self.search_pool = search_pool
        self.num_fewshot = num_fewshot
        self.confidence = confidence
        self.max_docs = dict(max_docs) if isinstance(max_docs, Mapping) else max_docs
        if max_docs is not None and role != "search":
            raise FrontierError("adaptive documents (max_docs) are for the search role only")
        self.floors = tuple(f for f in floors if f.needs == "tasks")
        self._lm: Any = None
        self._model: Any = None
        self._task_dict: dict[str, Any] | None = None
        self._samples: dict[str, list[int]] = {}
        self._order: dict[str, list[int]] = {}  # each leaf's documents in the seeded order
        self._first: dict[str, int] = {}  # how many of them the first look reads
        self._leaves: dict[str, list[str]] = {}
        self._metrics: dict[str, str] = {}
        self._fewshot: dict[str, int] = {}
        self._digest: str | None = None
        self.baseline: dict[str, float] | None = None
        self.baseline_docs: dict[str, dict[str, float]] = {}
        self.chance: dict[str, float | None] = {}

    # -- setup ----------------------------------------------------------------

    def _load_tasks(self) -> None:
        """Load the tasks once, choose subtasks and documents, fix few-shot settings."""
        with _quiet():
            tm = task_manager(self.mirror, use_hub=self.use_hub)
            try:
                loaded = tm.load(list(self.tasks))
            except (KeyError, ValueError) as exc:
                raise FrontierError(f"lm-eval cannot load tasks {self.tasks}: {exc}") from None
        groups: dict[str, Any] = dict(loaded.get("groups", {}))
        leaves_all: dict[str, Any] = dict(loaded["tasks"])
        keep: dict[str, Any] = {}
        per_leaf: dict[str, int | None] = {}
        cap_leaf: dict[str, int | None] = {}
        for name in self.tasks:
            if name in groups:
                group = groups[name]
                names = [t.task_name for t in group.get_all_tasks()]
                chosen = select_subtasks(name, names, self.subtasks, self.seed)
                _prune_group(group, set(chosen))
                self._leaves[name] = chosen
            elif name in leaves_all:
                self._leaves[name] = [name]
            else:
                raise FrontierError(f"lm-eval loaded no task or group named {name!r}")
            for leaf in self._leaves[name]:
                keep[leaf] = leaves_all[leaf]
                per_leaf[leaf] = share(docs_for(self.n_docs, name), len(self._leaves[name]))
                cap = docs_for(self.max_docs, name) if self.max_docs is not None else None
                cap_leaf[leaf] = (
                    per_leaf[leaf] if cap is None else share(cap, len(self._leaves[name]))
                )
        kept_groups = {g.name: g for g in _live_groups(groups, self.tasks)}
        self._task_dict = {
            "tasks": keep,
            "groups": kept_groups,
            "group_map": {g.name: g.child_names for g in kept_groups.values()},
        }
        with _quiet():
            for leaf, task in keep.items():
                n = len(task.eval_docs)
                self._order[leaf] = ordered_docs(
                    leaf,
                    n,
                    role=self.role,
                    n_docs=cap_leaf[leaf],
                    seed=self.seed,
                    search_pool=self.search_pool,
                )
                first = per_leaf[leaf]
                self._first[leaf] = len(self._order[leaf]) if first is None else first
                # every document any look may read: the baseline is measured on all of them
                self._samples[leaf] = sorted(self._order[leaf])
                self._set_fewshot(task)
                self._fewshot[leaf] = int(task.get_config("num_fewshot") or 0)
        for name in self.tasks:
            self._metrics[name] = _metric_for(name, [keep[leaf] for leaf in self._leaves[name]])
        self._digest = self._docs_digest()

    def _set_fewshot(self, task: Any) -> None:
        # Same rule as lm_eval.simple_evaluate: a YAML that says 0 shots stays at 0.
        current = task.get_config("num_fewshot")
        if self.num_fewshot is not None and current != 0:
            task.set_config(key="num_fewshot", value=self.num_fewshot)
        elif current is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=FEWSHOT_SEED)

    def _docs_digest(self) -> str:
        """blake2b of every chosen document's index and content: the protocol's identity."""
        assert self._task_dict is not None
        h = hashlib.blake2b(digest_size=16)
        for leaf in sorted(self._samples):
            docs = self._task_dict["tasks"][leaf].eval_docs
            h.update(json.dumps([leaf, self._samples[leaf]]).encode())
            for i in self._samples[leaf]:
                h.update(json.dumps(docs[i], sort_keys=True, default=str).encode())
        return h.hexdigest()

    def prepare(self, lm: LoadedModel) -> None:
        """Build the task dict and the wrapper once; measure (or read) the baseline."""
        if self._task_dict is None:
            self._load_tasks()
        self._wrap(lm)
        key = {"protocol": self.protocol(), "model": lm.fingerprint}
        outcomes = cached_baseline(
            "tasks", key, lambda: self._outcomes(), code=(type(self)._outcomes, _per_doc)
        )
        self.baseline_docs = {name: dict(o["docs"]) for name, o in outcomes.items()}
        self.chance = {name: o["chance"] for name, o in outcomes.items()}
        self.baseline = {name: float(o["acc"]) for name, o in outcomes.items()}
        if self.adaptive:  # the figure of the first look's documents
            self.baseline = {
                name: _mean([self.baseline_docs[name][k] for k in self._keys(name, None)])
                for name in self.tasks
            }

    @property
    def adaptive(self) -> bool:
        return self.max_docs is not None

    def _wrap(self, lm: LoadedModel) -> None:
        if self._lm is not None and self._model is lm.model:
            return
        with _quiet():
            from lm_eval.models.huggingface import HFLM

            wrapper = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=self.batch_size)
        # The evaluator calls these without disable_tqdm; progress bars per call are noise.
        for method in ("loglikelihood", "loglikelihood_rolling", "generate_until"):
            setattr(wrapper, method, functools.partial(getattr(wrapper, method), disable_tqdm=True))
        self._lm, self._model = wrapper, lm.model

    # -- measuring ------------------------------------------------------------

    def _run(self, task_dict: dict[str, Any], samples: dict[str, list[int]]) -> Any:
        from lm_eval.evaluator import evaluate

        assert self._lm is not None
        with _quiet():
            out = evaluate(
                lm=self._lm,
                task_dict=task_dict,
                samples=samples,
                bootstrap_iters=0,
                log_samples=True,
            )
        if out is None:
            raise FrontierError("lm-eval returned no results (not rank 0?)")
        return out

    def _outcomes(self) -> dict[str, dict[str, Any]]:
        """Each requested task's (or group's) standard metric for the model as it is now
        on all its documents, its per-document scores (``"leaf/index"`` -> score) and the
        chance level of its documents (None where the metric is not a plain accuracy)."""
        assert self._task_dict is not None
        out = self._run(self._task_dict, self._samples)
        results = out["results"]
        outcomes: dict[str, dict[str, Any]] = {}
        for name in self.tasks:
            metric = self._metrics[name]
            key = f"{metric},none"
            if key not in results.get(name, {}):
                raise FrontierError(f"lm-eval gave no {key!r} for {name}")
            docs, chance = _per_doc(out["samples"], self._leaves[name], metric)
            outcomes[name] = {"acc": float(results[name][key]), "docs": docs, "chance": chance}
        return outcomes

    def _leaf_scores(self, samples: dict[str, list[int]]) -> dict[str, float]:
        """Per-document scores of the leaves in ``samples`` only (no group figures)."""
        assert self._task_dict is not None
        leaves = self._task_dict["tasks"]
        task_dict = {"tasks": {k: leaves[k] for k in samples}, "groups": {}, "group_map": {}}
        out = self._run(task_dict, samples)
        scores: dict[str, float] = {}
        for name in self.tasks:
            mine = [leaf for leaf in self._leaves[name] if leaf in samples]
            if mine:
                scores.update(_per_doc(out["samples"], mine, self._metrics[name])[0])
        return scores

    def _read(self, leaf: str, looks: int) -> int:
        """How many of ``leaf``'s documents (in the seeded order) ``looks`` looks read: the
        first look ``n_docs``, each further one twice as many (none before the first)."""
        return 0 if looks < 1 else self._first[leaf] * 2 ** (looks - 1)

    def _keys(self, name: str, looks: int | None) -> list[str]:
        """The documents of task ``name`` read by ``looks`` looks (None: the first)."""
        return [
            f"{leaf}/{i}"
            for leaf in self._leaves[name]
            for i in self._order[leaf][: self._read(leaf, looks or 1)]
        ]

    def _max_looks(self, name: str) -> int:
        """Looks until every leaf of task ``name`` has read all its documents."""
        looks = 1
        for leaf in self._leaves[name]:
            while self._read(leaf, looks) < len(self._order[leaf]):
                looks += 1
        return looks

    def evaluate(self, lm: LoadedModel) -> Measurement:
        if self.baseline is None:
            raise not_prepared(self.name)
        self._wrap(lm)
        if self.adaptive:
            accs, details = self._adaptive()
        else:
            outcomes = self._outcomes()
            accs = {name: float(o["acc"]) for name, o in outcomes.items()}
            details = {
                name: self._paired(
                    name, accs[name], self.baseline[name], outcomes[name]["docs"], None
                )
                for name in self.tasks
            }
        return Measurement(
            name=self.name,
            value=_mean([d["retained"] for d in details.values()]),
            direction=self.direction,
            raw=_mean(list(accs.values())),
            baseline=_mean(list(self.baseline.values())),
            details=details,
        )

    def _paired(
        self, name: str, acc: float, base: float, now: Mapping[str, float], looks: int | None
    ) -> dict[str, Any]:
        """One task's figures and intervals on the documents in ``now`` (paired by key with
        the unpruned model's), at the confidence of one look of ``looks`` (None: fixed)."""
        keys = list(now)
        pruned = [now[k] for k in keys]
        unpruned = [self.baseline_docs[name][k] for k in keys]
        level = self.confidence
        if looks is not None:
            level = 1 - (1 - self.confidence) / self._max_looks(name)
        ci = retention_interval(pruned, unpruned, level)
        acc_ci = accuracy_interval(pruned, level)
        out: dict[str, Any] = {
            "metric": self._metrics[name],
            "acc": acc,
            "baseline": base,
            "retained": _retained(acc, base),
            "n_docs": len(keys),
            "ci": [ci.low, ci.high],
            "acc_ci": [acc_ci.low, acc_ci.high],
            "confidence": level,
            "gained": sum(1 for a, b in zip(pruned, unpruned, strict=True) if a > b),
            "lost": sum(1 for a, b in zip(pruned, unpruned, strict=True) if a < b),
        }
        if looks is not None:
            out["looks"] = looks
        return out

    def _adaptive(self) -> tuple[dict[str, float], dict[str, Any]]:
        """Score each task on its first look's documents, then double the documents of
        every task a floor is undecided on, until each is decided or at its cap."""
        scores: dict[str, float] = {}
        looks = dict.fromkeys(self.tasks, 1)
        todo = list(self.tasks)
        details: dict[str, Any] = {}
        while todo:
            samples: dict[str, list[int]] = {}
            for name in todo:
                for leaf in self._leaves[name]:
                    n = looks[name]
                    fresh = self._order[leaf][self._read(leaf, n - 1) : self._read(leaf, n)]
                    if fresh:  # (lm-eval reads an empty list as "every document")
                        samples[leaf] = sorted(fresh)
            if samples:
                scores.update(self._leaf_scores(samples))
            for name in todo:
                now = {k: scores[k] for k in self._keys(name, looks[name])}
                acc = _mean(list(now.values()))
                base = _mean([self.baseline_docs[name][k] for k in now])
                details[name] = self._paired(name, acc, base, now, looks[name])
            metrics = TrialMetrics(tasks={n: TaskScore.from_details(d) for n, d in details.items()})
            undecided = {
                n
                for f in self.floors
                if f.decision(metrics) == "undecided"
                for n in (self.tasks if f.metric == "tasks" else [f.metric])
                if n in details
            }
            todo = [n for n in self.tasks if n in undecided and looks[n] < self._max_looks(n)]
            for name in todo:
                looks[name] += 1
        return {n: float(d["acc"]) for n, d in details.items()}, details

    def protocol(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "objective": self.name,
            "metric": "mean over tasks of accuracy / unpruned accuracy "
            "(1 + accuracy where the unpruned accuracy is 0)",
            "lm_eval_version": lm_eval_version(),
            "tasks": list(self.tasks),
            "role": self.role,
            "seed": self.seed,
            "search_pool": self.search_pool,
            "n_docs_requested": self.n_docs,
            "subtasks_requested": self.subtasks,
            "batch_size": self.batch_size,
            "data": "hub" if self.use_hub else "offline mirror",
            "bootstrap_iters": 0,
            "confidence": self.confidence,
            "interval": "paired over documents: adjusted Wald on the log retention "
            "(two discordant pseudo-documents added; frontier.stats)",
        }
        if self.adaptive:
            out["adaptive"] = {
                "first_docs": self.n_docs,
                "max_docs": self.max_docs,
                "floors": [str(f) for f in self.floors],
                "rule": "while a floor is undecided at 1 - (1 - confidence) / looks, the "
                "task's documents double (seeded order, search pool), up to max_docs",
            }
        if self._digest is not None:
            out["metric_per_task"] = dict(self._metrics)
            out["num_fewshot"] = dict(sorted(self._fewshot.items()))
            out["docs"] = {leaf: len(idx) for leaf, idx in sorted(self._samples.items())}
            out["subtasks"] = {n: self._leaves[n] for n in self.tasks if self._leaves[n] != [n]}
            out["docs_digest"] = self._digest
        notes = [BENCHMARKS[t].note for t in self.tasks if t in BENCHMARKS]
        if not self.use_hub and any(notes):
            # the key predates other notes; only TruthfulQA (a subset) has one
            out["truthfulqa"] = next(n for n in notes if n)
        return out

    def warnings(self) -> list[str]:
        """A task the unpruned model scores within two standard errors of chance on: a
        floor on it tests noise."""
        if self.baseline is None:
            return []
        out = []
        for name in self.tasks:
            chance, docs = self.chance.get(name), self.baseline_docs.get(name, {})
            acc = _mean(list(docs.values())) if docs else self.baseline[name]
            if chance is not None and near_chance(acc, chance, len(docs)):
                out.append(
                    f"{name}: the unpruned model scores {acc:.1%} on {len(docs)} "
                    f"{self.role} documents, within two standard errors of chance "
                    f"({chance:.1%}); a floor on it tests noise"
                )
        return out

    def doc_indices(self) -> dict[str, list[int]]:
        """The chosen document indices per leaf task (as lm-eval's ``samples`` argument)."""
        if self._task_dict is None:
            self._load_tasks()
        return {k: list(v) for k, v in self._samples.items()}


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


def _prune_group(group: Any, keep: set[str]) -> None:
    """Drop the subtasks not in ``keep`` from a group tree, and subgroups left empty."""
    from lm_eval.api.group import Group

    for child in list(group):
        if isinstance(child, Group):
            _prune_group(child, keep)
            if not child.get_all_tasks():
                group.pop(child.name)
        elif child.task_name not in keep:
            group.pop(child.task_name)


def _live_groups(groups: dict[str, Any], requested: Sequence[str]) -> list[Any]:
    out = []
    for name in requested:
        if name in groups:
            out.append(groups[name])
            out.extend(groups[name].get_all_groups())
    return out


def _metric_for(name: str, leaves: Sequence[Any]) -> str:
    """The task's standard metric from the registry, else the first accuracy-like one."""
    if name in BENCHMARKS:
        return BENCHMARKS[name].metric
    metrics = {m["metric"] for t in leaves for m in (t.config.metric_list or [])}
    for candidate in ("acc_norm", "acc", "exact_match"):
        if candidate in metrics:
            return candidate
    raise FrontierError(f"{name}: no accuracy-like metric among {sorted(metrics)}")


def _retained(acc: float, base: float) -> float:
    """acc / base. Where the unpruned model scored 0 (tiny or random models on a few
    documents) the ratio is undefined; 1 + acc keeps it finite, 1 at the baseline, and
    still rising with accuracy, so a search is neither stopped nor misled by it."""
    if base > 0:
        return acc / base
    return 1.0 + acc


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


__all__ = [
    "FEWSHOT_SEED",
    "SEARCH_POOL",
    "Role",
    "TaskAccuracy",
    "doc_order",
    "docs_for",
    "search_pool_size",
    "select_docs",
    "select_subtasks",
]
