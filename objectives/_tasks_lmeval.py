"""The lm-eval plumbing of the tasks objective (:mod:`objectives.tasks`).

Loading tasks and groups (pruned to the chosen subtasks), their few-shot settings and
standard metrics, the in-memory ``HFLM`` wrapper, one quiet call of lm-eval's
``evaluate`` and the digest of the documents chosen. lm-eval, ``datasets`` and
``tqdm`` are imported on first use only.
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

from frontier.data.mirror import task_manager
from frontier.data.tasks import BENCHMARKS
from frontier.errors import FrontierError
from frontier.models import LoadedModel
from objectives._docs import select_subtasks

#: How the tasks objective scores lm-eval's log-likelihood requests: reading each context
#: once (:mod:`objectives._tasks_scorer`), or with lm-eval's own ``HFLM``.
SCORERS = ("shared-context", "hflm")
DEFAULT_SCORER = "shared-context"

# lm-eval's fewshot seed default in simple_evaluate; used so fewshot prompts match its CLI.
FEWSHOT_SEED = 1234


@contextlib.contextmanager
def quiet() -> Iterator[None]:
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


def load_tasks(
    tasks: Sequence[str],
    *,
    subtasks: int | None,
    seed: int,
    mirror: Path | None,
    use_hub: bool,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """lm-eval's task dict of ``tasks`` (task or group names) and each one's leaf tasks.

    A group keeps only a seeded choice of ``subtasks`` of its subtasks (all where None)
    and drops the subgroups left empty. The task dict has lm-eval's ``"tasks"`` (the
    leaves kept), ``"groups"`` and ``"group_map"``.
    """
    with quiet():
        tm = task_manager(mirror, use_hub=use_hub)
        try:
            loaded = tm.load(list(tasks))
        except (KeyError, ValueError) as exc:
            raise FrontierError(f"lm-eval cannot load tasks {tasks}: {exc}") from None
    groups: dict[str, Any] = dict(loaded.get("groups", {}))
    leaves_all: dict[str, Any] = dict(loaded["tasks"])
    leaves: dict[str, list[str]] = {}
    keep: dict[str, Any] = {}
    for name in tasks:
        if name in groups:
            group = groups[name]
            names = [t.task_name for t in group.get_all_tasks()]
            chosen = select_subtasks(name, names, subtasks, seed)
            prune_group(group, set(chosen))
            leaves[name] = chosen
        elif name in leaves_all:
            leaves[name] = [name]
        else:
            raise FrontierError(f"lm-eval loaded no task or group named {name!r}")
        for leaf in leaves[name]:
            keep[leaf] = leaves_all[leaf]
    kept_groups = {g.name: g for g in live_groups(groups, tasks)}
    task_dict = {
        "tasks": keep,
        "groups": kept_groups,
        "group_map": {g.name: g.child_names for g in kept_groups.values()},
    }
    return task_dict, leaves


def prune_group(group: Any, keep: set[str]) -> None:
    """Drop the subtasks not in ``keep`` from a group tree, and subgroups left empty."""
    from lm_eval.api.group import Group

    for child in list(group):
        if isinstance(child, Group):
            prune_group(child, keep)
            if not child.get_all_tasks():
                group.pop(child.name)
        elif child.task_name not in keep:
            group.pop(child.task_name)


def live_groups(groups: dict[str, Any], requested: Sequence[str]) -> list[Any]:
    out = []
    for name in requested:
        if name in groups:
            out.append(groups[name])
            out.extend(groups[name].get_all_groups())
    return out


def set_fewshot(task: Any, num_fewshot: int | None) -> None:
    """Set a task's few-shot count (``num_fewshot`` overrides its default) and seed."""
    # Same rule as lm_eval.simple_evaluate: a YAML that says 0 shots stays at 0.
    current = task.get_config("num_fewshot")
    if num_fewshot is not None and current != 0:
        task.set_config(key="num_fewshot", value=num_fewshot)
    elif current is None:
        task.set_config(key="num_fewshot", value=0)
    task.set_fewshot_seed(seed=FEWSHOT_SEED)


def metric_for(name: str, leaves: Sequence[Any]) -> str:
    """The task's standard metric from the registry, else the first accuracy-like one."""
    if name in BENCHMARKS:
        return BENCHMARKS[name].metric
    metrics = {m["metric"] for t in leaves for m in (t.config.metric_list or [])}
    for candidate in ("acc_norm", "acc", "exact_match"):
        if candidate in metrics:
            return candidate
    raise FrontierError(f"{name}: no accuracy-like metric among {sorted(metrics)}")


def docs_digest(task_dict: Mapping[str, Any], samples: Mapping[str, list[int]]) -> str:
    """blake2b of every chosen document's index and content: the protocol's identity."""
    h = hashlib.blake2b(digest_size=16)
    for leaf in sorted(samples):
        docs = task_dict["tasks"][leaf].eval_docs
        h.update(json.dumps([leaf, samples[leaf]]).encode())
        for i in samples[leaf]:
            h.update(json.dumps(docs[i], sort_keys=True, default=str).encode())
    return h.hexdigest()


def hf_wrapper(lm: LoadedModel, batch_size: int, scorer: str = DEFAULT_SCORER) -> Any:
    """lm-eval's ``HFLM`` around the in-memory model (``scorer="hflm"``), or its subclass
    that reads each context once (``"shared-context"``, :mod:`objectives._tasks_scorer`);
    progress bars off."""
    with quiet():
        from lm_eval.models.huggingface import HFLM

        from objectives._tasks_scorer import SharedContextLM

        if scorer not in SCORERS:
            raise FrontierError(f"unknown scorer {scorer!r}; use one of {', '.join(SCORERS)}")
        cls = SharedContextLM if scorer == "shared-context" else HFLM
        wrapper = cls(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size)
    # The evaluator calls these without disable_tqdm; progress bars per call are noise.
    for method in ("loglikelihood", "loglikelihood_rolling", "generate_until"):
        setattr(wrapper, method, functools.partial(getattr(wrapper, method), disable_tqdm=True))
    return wrapper


def run(wrapper: Any, task_dict: dict[str, Any], samples: dict[str, list[int]]) -> Any:
    """lm-eval's ``evaluate`` of ``samples`` (leaf -> document indices), samples logged."""
    from lm_eval.evaluator import evaluate

    with quiet():
        out = evaluate(
            lm=wrapper,
            task_dict=task_dict,
            samples=samples,
            bootstrap_iters=0,
            log_samples=True,
        )
    if out is None:
        raise FrontierError("lm-eval returned no results (not rank 0?)")
    return out
