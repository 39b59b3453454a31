"""lm-eval's side of the mirror: task YAMLs that point its standard tasks at the mirror.

Each YAML ``include``s the built-in one and changes only ``dataset_path`` (and drops a
training split the mirror lacks), so prompts, ``!function`` hooks, metrics and group
averages stay lm-eval's own. They name absolute paths, so they are rewritten whenever
lm-eval or the mirror has moved.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frontier._io import atomic_dir
from frontier.data.tasks import benchmark
from frontier.errors import FrontierError

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

_HEAD = "# written by frontier.data.mirror; rewritten when lm-eval or the mirror moves"


def lm_eval_version() -> str:
    """The installed lm-eval's version ("not installed" where it is not)."""
    try:
        return importlib.metadata.version("lm_eval")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def lm_eval_tasks_dir() -> Path:
    """lm-eval's built-in task folder, found without importing lm_eval (slow to import)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FrontierError("lm-eval is not installed (pip install 'lm-eval>=0.4.9,<0.5')")
    return Path(next(iter(spec.submodule_search_locations))) / "tasks"


def _yaml_line(key: str, value: Any) -> str:
    return f"{key}: {json.dumps(value)}"  # JSON scalars are YAML scalars


def override_yamls(
    mirror: Path, tasks: Iterable[str], subjects: Sequence[str] = ()
) -> dict[str, str]:
    """The task YAMLs (relative path -> text) that point lm-eval's tasks at ``mirror``.

    Each includes the built-in YAML by absolute path, so it depends on where lm-eval and
    the mirror are installed; :func:`write_overrides` rewrites them if either moved.
    ``subjects`` are the subtasks of the groups among ``tasks``.
    """
    builtin = lm_eval_tasks_dir()
    mirror = mirror.resolve()
    out: dict[str, str] = {}

    def one(name: str, rel: str, fields: dict[str, Any]) -> str:
        src = builtin / rel
        if not src.is_file():
            raise FrontierError(
                f"lm-eval {lm_eval_version()} has no {rel}; this mirror needs lm-eval 0.4.9-0.4.x"
            )
        lines = [_HEAD, _yaml_line("include", str(src)), _yaml_line("task", name)]
        lines += [_yaml_line(k, v) for k, v in fields.items()]
        return "\n".join(lines) + "\n"

    for name in tasks:
        task = benchmark(name)
        fields: dict[str, Any] = {"dataset_path": str(mirror / task.dataset)}
        if task.drop_training_split:
            fields["training_split"] = None
        group = task.subtasks
        if group is None:
            out[f"{task.name}.yaml"] = one(task.name, task.yaml, fields)
            continue
        for rel in group.group_yamls:
            src = builtin / rel
            if not src.is_file():
                raise FrontierError(f"lm-eval has no {rel}")
            out[f"{task.name}/{Path(rel).name}"] = f"{_HEAD}\n{_yaml_line('include', str(src))}\n"
        for s in subjects:
            sub = group.prefix + s
            out[f"{task.name}/{sub}.yaml"] = one(sub, group.yaml.format(s), fields)
    return out


def write_overrides(mirror: Path, target: Path, manifest: dict[str, Any]) -> None:
    """Write the mirror's task YAMLs into ``target`` (atomically, replacing it)."""
    files = override_yamls(mirror, manifest["tasks"], manifest.get("mmlu_subjects", []))
    with atomic_dir(target) as tmp:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)


def overrides_current(mirror: Path, manifest: dict[str, Any]) -> bool:
    """Whether ``mirror/tasks`` holds exactly the YAMLs this lm-eval and location need."""
    files = override_yamls(mirror, manifest["tasks"], manifest.get("mmlu_subjects", []))
    tasks_dir = mirror / "tasks"
    on_disk = {str(p.relative_to(tasks_dir)) for p in tasks_dir.rglob("*.yaml")}
    if on_disk != set(files):
        return False
    return all((tasks_dir / rel).read_text() == text for rel, text in files.items())


def index_overrides(tasks_dir: Path) -> TaskManager:
    """A ``TaskManager`` over the override YAMLs only (instant; the defaults take seconds)."""
    from lm_eval.tasks import TaskManager

    with _quiet_index():
        return TaskManager(include_path=str(tasks_dir), include_defaults=False)


@contextlib.contextmanager
def _quiet_index() -> Iterator[None]:
    log = logging.getLogger("lm_eval")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
