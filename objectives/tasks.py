"""lm-eval task accuracy, as the share of the unpruned model's accuracy that is retained.

The model is evaluated in memory through lm-eval's ``HFLM`` wrapper (by default with a
scorer that reads each context once, :mod:`objectives._tasks_scorer`) and task objects,
so prompts, tokens, scoring and metrics are lm-eval's; only the choice of documents is
ours. The wrapper and the tasks are built once in :meth:`prepare`; the pruning engine
changes the weights in place and the same wrapper sees the change.

Which documents are read is decided in :mod:`objectives._docs`; the facts about each
benchmark task (its standard metric, notes such as "a 299-question subset") come from
the engine's task registry, :mod:`frontier.data.tasks`. The lm-eval plumbing is in
:mod:`objectives._tasks_lmeval`, the adaptive looks in :mod:`objectives._tasks_looks`
and the figures from per-document scores in :mod:`objectives._tasks_scores`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from frontier.data.mirror import lm_eval_version
from frontier.data.tasks import BENCHMARKS
from frontier.errors import FrontierError
from frontier.models import LoadedModel
from frontier.stats import DEFAULT_CONFIDENCE, near_chance
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
from objectives._tasks_lmeval import (
    DEFAULT_SCORER,
    FEWSHOT_SEED,
    SCORERS,
    docs_digest,
    hf_wrapper,
    load_tasks,
    metric_for,
    quiet,
    run,
    set_fewshot,
)
from objectives._tasks_looks import Looks
from objectives._tasks_scores import _mean, _per_doc, paired
from objectives._tasks_scores import _retained as _retained  # tests import it from here


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
    ``scorer`` scores log-likelihoods: one of :data:`SCORERS`, named in the protocol.

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
        scorer: str = DEFAULT_SCORER,
    ) -> None:
        if role not in ("search", "report"):
            raise FrontierError(f"role must be 'search' or 'report', got {role!r}")
        if scorer not in SCORERS:
            raise FrontierError(f"scorer must be one of {', '.join(SCORERS)}, got {scorer!r}")
        self.scorer = scorer
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
        self._leaves: dict[str, list[str]] = {}
        self._looks = Looks(self._leaves, {}, {})  # the adaptive documents' looks
        self._metrics: dict[str, str] = {}
        self._fewshot: dict[str, int] = {}
        self._digest: str | None = None
        self.baseline: dict[str, float] | None = None
        self.baseline_docs: dict[str, dict[str, float]] = {}
        self.chance: dict[str, float | None] = {}

    # -- setup ----------------------------------------------------------------

    def _load_tasks(self) -> None:
        """Load the tasks once, choose subtasks and documents, fix few-shot settings."""
        task_dict, self._leaves = load_tasks(
            self.tasks,
            subtasks=self.subtasks,
            seed=self.seed,
            mirror=self.mirror,
            use_hub=self.use_hub,
        )
        keep: dict[str, Any] = task_dict["tasks"]
        per_leaf: dict[str, int | None] = {}
        cap_leaf: dict[str, int | None] = {}
        order: dict[str, list[int]] = {}  # each leaf's documents in the seeded order
        first: dict[str, int] = {}  # how many of them the first look reads
        for name in self.tasks:
            for leaf in self._leaves[name]:
                per_leaf[leaf] = share(docs_for(self.n_docs, name), len(self._leaves[name]))
                cap = docs_for(self.max_docs, name) if self.max_docs is not None else None
                cap_leaf[leaf] = (
                    per_leaf[leaf] if cap is None else share(cap, len(self._leaves[name]))
                )
        self._task_dict = task_dict
        with quiet():
            for leaf, task in keep.items():
                n = len(task.eval_docs)
                order[leaf] = ordered_docs(
                    leaf,
                    n,
                    role=self.role,
                    n_docs=cap_leaf[leaf],
                    seed=self.seed,
                    search_pool=self.search_pool,
                )
                k = per_leaf[leaf]
                first[leaf] = len(order[leaf]) if k is None else k
                # every document any look may read: the baseline is measured on all of them
                self._samples[leaf] = sorted(order[leaf])
                set_fewshot(task, self.num_fewshot)
                self._fewshot[leaf] = int(task.get_config("num_fewshot") or 0)
        for name in self.tasks:
            self._metrics[name] = metric_for(name, [keep[leaf] for leaf in self._leaves[name]])
        self._looks = Looks(self._leaves, order, first)
        self._digest = docs_digest(self._task_dict, self._samples)

    def prepare(self, lm: LoadedModel) -> None:
        """Build the task dict and the wrapper once; measure (or read) the baseline."""
        if self._task_dict is None:
            self._load_tasks()
        self._wrap(lm)
        key = {"protocol": self.protocol(), "model": lm.fingerprint}
        scorer = sys.modules[type(self._lm).__module__]  # ours, or lm-eval's HFLM
        code = (type(self)._outcomes, _per_doc, scorer)
        outcomes = cached_baseline("tasks", key, lambda: self._outcomes(), code=code)
        self.baseline_docs = {name: dict(o["docs"]) for name, o in outcomes.items()}
        self.chance = {name: o["chance"] for name, o in outcomes.items()}
        self.baseline = {name: float(o["acc"]) for name, o in outcomes.items()}
        if self.adaptive:  # the figure of the first look's documents
            self.baseline = {
                name: _mean([self.baseline_docs[name][k] for k in self._looks.keys(name, None)])
                for name in self.tasks
            }

    @property
    def adaptive(self) -> bool:
        return self.max_docs is not None

    def _wrap(self, lm: LoadedModel) -> None:
        if self._lm is not None and self._model is lm.model:
            return
        self._lm, self._model = hf_wrapper(lm, self.batch_size, self.scorer), lm.model

    # -- measuring ------------------------------------------------------------

    def _run(self, task_dict: dict[str, Any], samples: dict[str, list[int]]) -> Any:
        assert self._lm is not None
        return run(self._lm, task_dict, samples)

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
            level = 1 - (1 - self.confidence) / self._looks.max_looks(name)
        out = paired(self._metrics[name], acc, base, pruned, unpruned, level)
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
            samples = self._looks.fresh({name: looks[name] for name in todo})
            if samples:
                scores.update(self._leaf_scores(samples))
            for name in todo:
                now = {k: scores[k] for k in self._looks.keys(name, looks[name])}
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
            todo = [n for n in self.tasks if n in undecided and looks[n] < self._looks.max_looks(n)]
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
            "scorer": self.scorer,
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


__all__ = [
    "FEWSHOT_SEED",
    "SCORERS",
    "SEARCH_POOL",
    "Role",
    "TaskAccuracy",
    "doc_order",
    "docs_for",
    "search_pool_size",
    "select_docs",
    "select_subtasks",
]
