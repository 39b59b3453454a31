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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from frontier.errors import FrontierError
from frontier.models import LoadedModel
from frontier.stats import DEFAULT_CONFIDENCE
from frontier.study.slo import SLO
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
from objectives._tasks_final import Switch, chance, read_looks, unpruned_scores
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
from objectives._tasks_looks import Looks, first_to_end
from objectives._tasks_protocol import near_chance_warnings, tasks_protocol
from objectives._tasks_scores import _doc_choices, _mean, _per_doc, paired
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
    in the details (``n_docs``, ``looks``, ``docs``: per leaf, how many of its seeded
    order). The accuracies are then means over the documents used (a group's
    micro-averaged), for the pruned and the unpruned model on the same documents.

    The final stage's looks (``first_docs``, report role): the report documents are read
    in looks that start at ``first_docs`` or a little more and double up to ``n_docs``
    (None: every report document), the last look ending exactly there; :meth:`decide`
    reads the next look while one of ``floors`` is undecided, at the same per-look level.
    The unpruned model's scores are taken look by look, when a look first needs them,
    and cached on disk (:mod:`objectives._tasks_final`), so a study's candidates score
    only the pruned model. :meth:`evaluate` reads ``looks[name]`` looks (default one):
    what a record used, read again (``frontier verify``).
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
        first_docs: int | Mapping[str, int] | None = None,
        looks: Mapping[str, int] | None = None,
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
        if first_docs is not None and role != "report":
            raise FrontierError("the final stage's looks (first_docs) are for the report role")
        self.first_docs = dict(first_docs) if isinstance(first_docs, Mapping) else first_docs
        self.replay = dict(looks or {})
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
        self._model_fingerprint: str | None = None  # the unpruned model's (prepare)
        self._choices: dict[str, int] = {}  # the unpruned scores' documents: their choices
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
                if self.final_looks:
                    start = docs_for(self.first_docs, self._owner(leaf))
                    n_leaves = len(self._leaves[self._owner(leaf)])
                    first[leaf] = first_to_end(len(order[leaf]), share(start, n_leaves) or 1)
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
        self._model_fingerprint = lm.fingerprint
        if self.final_looks:  # the looks :meth:`evaluate` reads; later ones when needed
            for n in range(1, 1 + max(self.replay.values(), default=1)):
                unpruned_scores(self, self._looks.fresh({t: n for t in self.tasks}), None)
            self._first_look_baseline()
            return
        key = {"protocol": self.protocol(), "model": lm.fingerprint}
        scorer = sys.modules[type(self._lm).__module__]  # ours, or lm-eval's HFLM
        code = (type(self)._outcomes, _per_doc, scorer)
        outcomes = cached_baseline("tasks", key, lambda: self._outcomes(), code=code)
        self.baseline_docs = {name: dict(o["docs"]) for name, o in outcomes.items()}
        self.chance = {name: o["chance"] for name, o in outcomes.items()}
        self.baseline = {name: float(o["acc"]) for name, o in outcomes.items()}
        if self.adaptive:
            self._first_look_baseline()

    def _first_look_baseline(self) -> None:
        """The baseline figures of the first look's documents."""
        self.baseline = {
            name: _mean([self.baseline_docs[name][k] for k in self._looks.keys(name, None)])
            for name in self.tasks
        }
        for name in self.tasks if self.final_looks else ():
            keys = self._looks.keys(name, None)
            base = [self.baseline_docs[name][k] for k in keys]
            self.chance[name] = chance(base, [self._choices[k] for k in keys])

    @property
    def adaptive(self) -> bool:
        return self.max_docs is not None

    @property
    def final_looks(self) -> bool:
        """Reads the report documents in looks (:meth:`decide`)."""
        return self.first_docs is not None

    def _owner(self, leaf: str) -> str:
        return next(name for name in self.tasks if leaf in self._leaves[name])

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
        return {k: score for k, (score, _choices) in self._leaf_rows(samples).items()}

    def _leaf_rows(self, samples: dict[str, list[int]]) -> dict[str, tuple[float, int]]:
        """Each document's (score, number of choices), of the leaves in ``samples`` only."""
        assert self._task_dict is not None
        leaves = self._task_dict["tasks"]
        task_dict = {"tasks": {k: leaves[k] for k in samples}, "groups": {}, "group_map": {}}
        out = self._run(task_dict, samples)
        rows: dict[str, tuple[float, int]] = {}
        for name in self.tasks:
            mine = [leaf for leaf in self._leaves[name] if leaf in samples]
            if mine:
                choices = _doc_choices(out["samples"], mine)
                for k, v in _per_doc(out["samples"], mine, self._metrics[name])[0].items():
                    rows[k] = (v, choices[k])
        return rows

    def evaluate(self, lm: LoadedModel) -> Measurement:
        if self.baseline is None:
            raise not_prepared(self.name)
        self._wrap(lm)
        if self.adaptive or self.final_looks:
            accs, details = read_looks(
                self, self._leaf_scores, decide=self.adaptive, target=self.replay
            )
        else:
            outcomes = self._outcomes()
            accs = {name: float(o["acc"]) for name, o in outcomes.items()}
            details = {
                name: self._paired(
                    name, accs[name], self.baseline[name], outcomes[name]["docs"], None
                )
                for name in self.tasks
            }
        return self._measurement(accs, details)

    def decide(
        self, lm: LoadedModel, switch: Switch, progress: Callable[[str], None] | None = None
    ) -> Measurement:
        """The final stage's measurement: each task's report documents read in looks
        until its floors are decided or its documents are used up; the unpruned model's
        scores of a look not yet known are taken with ``switch(False)`` (the model made
        unpruned), then ``switch(True)``. Without looks (``first_docs``), :meth:`evaluate`."""
        if not self.final_looks:
            return self.evaluate(lm)
        if self.baseline is None:
            raise not_prepared(self.name)
        self._wrap(lm)

        def score(samples: dict[str, list[int]]) -> dict[str, float]:
            unpruned_scores(self, samples, switch)
            return self._leaf_scores(samples)

        return self._measurement(*read_looks(self, score, decide=True, progress=progress))

    def _measurement(self, accs: dict[str, float], details: dict[str, Any]) -> Measurement:
        assert self.baseline is not None
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

    def protocol(self) -> dict[str, Any]:
        return tasks_protocol(self)

    def warnings(self) -> list[str]:
        """A task the unpruned model scores within two standard errors of chance on: a
        floor on it tests noise."""
        return near_chance_warnings(self)

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
