"""The study specification: everything that decides what a study measures, as one value.

A spec comes from CLI flags or a TOML file (``frontier find --spec studies/x.toml``; flags
override the file; an unknown key is an error). The fields that change what is measured
form the study's fingerprint: a study refuses to continue under a different one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import tomllib

from frontier.errors import FrontierError
from frontier.models.device import DEVICE_HELP, check_device, check_dtype, device_kind
from frontier.settings import CALIBRATION_TOKENS
from frontier.stats import DEFAULT_CONFIDENCE
from frontier.study._spec_fields import EXECUTION_FIELDS, LEGACY_VALUES
from frontier.study.early_stop import NOISE, PATIENCE

DtypeName = Literal["auto", "fp32", "bf16", "fp16"]
SamplerName = Literal["boundary", "tpe", "nsga2", "gp", "random"]
SAMPLERS: tuple[str, ...] = ("boundary", "tpe", "nsga2", "gp", "random")
TaskScorer = Literal["shared-context", "hflm"]  # objectives.tasks.SCORERS


def _field(default: Any, help: str, **cli: Any) -> Any:
    """A spec field with its documentation; the CLI makes its flag from ``help`` (and
    ``flag``, where the flag's name is not the field's)."""
    return field(default=default, metadata={"help": help, **cli})


def field_help(name: str) -> str:
    """The documentation of spec field ``name`` (the CLI's help text for its flag)."""
    return str(_FIELDS[name].metadata["help"])


@dataclass(frozen=True)
class StudySpec:
    """What to search, how to measure it, and the SLOs that make a point acceptable."""

    model: str = _field(
        "smollm2-135m", "the model: a built-in alias, a local folder, a .gguf file or a hub id"
    )
    slos: tuple[str, ...] = _field(
        ("ppl<2.0",),
        "an SLO, e.g. 'ppl<2.0', 'arc_easy>=90%', 'params<=80%' (repeat the flag to AND them)",
        flag="--slo",
    )
    study: str | None = _field(None, "study name (default: the model's name)")
    storage: str | None = _field(
        None,
        "Optuna storage URL (default: sqlite:///studies/STUDY.db; also postgresql://..., "
        "journal:PATH)",
    )
    trust_remote_code: bool = _field(False, "let the model's own Python code run when loading it")
    device: str = _field("auto", f"where the model runs: {DEVICE_HELP}")
    dtype: DtypeName = _field(
        "auto",
        "the model's compute dtype: auto (bf16 on a GPU, fp32 on the CPU), fp32, bf16 or "
        "fp16 (the refit's solves and the statistics stay in fp32/fp64 whatever it is)",
    )
    # the pruning operator: which neurons go (criterion) and what the kept ones become
    criterion: str = _field(
        "obs-greedy",
        "importance criterion ranking each layer's neurons: obs-greedy, obs, energy, "
        "activation, fluctuation, magnitude or random",
    )
    refit: bool = _field(
        True,
        "refit the kept down-projection columns by ridge least squares on the calibration "
        "activations (off: the old operator)",
    )
    compensate: bool = _field(
        False,
        "the old operator's FLAP mean compensation into the down bias (needs --no-refit; "
        "the refit subsumes it; compensated plans do not export)",
    )
    calibration_text: str = _field(
        "wiki-sample",
        "calibration text for the importance scores: wiki-sample, file:PATH or hf:NAME[:CONFIG]",
    )
    calibration_tokens: int = _field(
        CALIBRATION_TOKENS, "calibration tokens for the importance scores and the refit"
    )
    calibration_seq_len: int = _field(512, "tokens per calibration sequence")
    # evaluation text (search-time and final report use disjoint parts)
    text: str = _field(
        "wiki-sample",
        "evaluation text (perplexity, KL): wiki-sample, file:PATH or hf:NAME[:CONFIG]; "
        "search-time and held-out report figures use disjoint parts of it",
    )
    search_metric: Literal["ppl", "kl"] = _field(
        "ppl", "the cheap signal every trial gets: perplexity ratio or KL divergence"
    )
    search_tokens: int = _field(2048, "evaluation tokens per trial at search time")
    search_window: int | None = _field(
        256,
        "tokens per search-time window, the windows spread at even strides over the whole "
        "search text so that search_tokens read many documents, not the first few (capped "
        "at search_tokens and the model's context)",
    )
    report_tokens: int = _field(16384, "held-out evaluation tokens for the final report")
    report_points: int = _field(12, "Pareto trials re-measured on held-out data, at most")
    fit_tokens: int | None = _field(
        4096,
        "held-out tokens for the Pareto trials re-measured only to spread the front for the "
        "fits and the report (candidates for the chosen point and the uniform plan always "
        "get report_tokens); none, or at least report_tokens: every re-measured trial gets "
        "report_tokens",
    )
    check_texts: tuple[str, ...] = _field(
        (),
        "another text source (file:PATH, hf:NAME[:CONFIG]) whose held-out perplexity ratio "
        "the final re-measurement adds (repeat the flag for several)",
        flag="--check-text",
    )
    seq_len: int | None = _field(
        None, "tokens per evaluation window (default: 1024 or the model's maximum if smaller)"
    )
    # lm-eval tasks
    tasks: tuple[str, ...] = _field(
        (), "lm-eval tasks, comma-separated or repeated (e.g. arc_easy,hellaswag)"
    )
    # documents per requested task (a group's, e.g. mmlu's, spread over its subtasks); a
    # table {task = n, default = n} gives tasks their own counts
    task_docs: int | dict[str, int] = _field(
        100, "documents per task at search time (a seeded subset; a TOML table sets it per task)"
    )
    max_task_docs: int | dict[str, int] | None = _field(
        None,
        "adaptive documents: a trial whose task floor is undecided on task_docs gets twice "
        "as many, from the search pool, up to this many per task (none: task_docs for all)",
    )
    report_docs: int | dict[str, int] | None = _field(
        None,
        "the most report documents per task the final stage reads for a candidate, "
        "disjoint from the search's (its looks stop as soon as every task floor is "
        "decided); none: every document of the task's split past the search pool",
    )
    report_first_docs: int | dict[str, int] | None = _field(
        200,
        "the final stage's first look at a task's report documents (each further look "
        "doubles them, the last ending at report_docs; equal to report_docs: one look)",
    )
    subtasks: int | None = _field(
        None, "evaluate a seeded choice of this many subtasks of a group task (MMLU subjects)"
    )
    task_batch_size: int = _field(16, "lm-eval batch size")
    task_scorer: TaskScorer = _field(
        "shared-context",
        "how lm-eval's log-likelihood requests are scored: shared-context reads each "
        "context once (lm-eval's figures within 1e-4, faster), hflm with lm-eval's HFLM",
    )
    confidence: float | None = _field(
        DEFAULT_CONFIDENCE,
        "two-sided level of the paired interval on every task figure: the search rejects a "
        "trial only when a floor lies above its whole interval, the chosen point must meet "
        "it with the whole interval (none: decide on the point estimate)",
    )
    # search space
    min_keep: float = _field(0.2, "smallest keep ratio of a layer, as a fraction or percentage")
    max_keep: float = _field(1.0, "largest keep ratio of a layer, as a fraction or percentage")
    step: float = _field(0.025, "grid step of the keep ratios, as a fraction or percentage")
    groups: int | None = _field(
        None, "tie contiguous layers into this many groups (default: one ratio per layer)"
    )
    multiple: int = _field(8, "round every layer's width to a multiple of this")
    # budget and sampler
    sampler: SamplerName = _field(
        "boundary",
        "Optuna sampler: boundary (level switches near the SLO boundary, over TPE), tpe, "
        "nsga2, gp or random",
    )
    trials: int = _field(100, "total trials of the study (a resumed study runs only the rest)")
    timeout: float | None = _field(None, "wall-time limit in seconds")
    seed: int = _field(0, "the sampler's seed")
    warm_start: bool = _field(
        True,
        "begin by bisecting the uniform keep ratio at the SLOs (the baseline every report "
        "compares against), then uniform and global-threshold plans, before sampling",
    )
    families: tuple[str, ...] = _field(
        ("protect",),
        "allocation families whose mean keep is bisected after the uniform one: threshold, "
        "removal, protect, depth-falling, depth-rising (repeat or comma-separate; none: "
        "no family, no layer probe)",
        **{"flag": "--family", "metavar": "FAMILY"},
    )
    early_stop: bool = _field(
        True,
        f"end the search once {PATIENCE} sampled trials in a row (after the bisection and the "
        f"warm starts) found no plan meeting the SLOs that removes more than "
        f"{100 * NOISE:g} point(s) of MLP more than the best one; --trials stays the most",
    )
    threads: int | None = _field(
        None, "torch CPU threads (default: $FRONTIER_THREADS or torch's choice)"
    )
    memory: float | None = _field(
        None,
        "host memory in GiB the run may use; what does not fit (calibration statistics, "
        "refit factors) goes to disk, a layer at a time (default: $FRONTIER_MEMORY_GB, "
        "else 70% of what the machine has available)",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "slos", tuple(self.slos))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "check_texts", tuple(self.check_texts))
        families = tuple(self.families)
        object.__setattr__(self, "families", () if families == ("none",) else families)
        check_device(self.device)
        object.__setattr__(self, "dtype", check_dtype(self.dtype))
        if self.refit and self.compensate:
            raise FrontierError("the refit subsumes bias compensation: use one of them")
        if self.sampler not in SAMPLERS:
            raise FrontierError(f"unknown sampler {self.sampler!r}; use {', '.join(SAMPLERS)}")
        if self.task_scorer not in get_args(TaskScorer):
            raise FrontierError(
                f"unknown task_scorer {self.task_scorer!r}; use shared-context or hflm"
            )
        if self.search_metric not in ("ppl", "kl"):
            raise FrontierError(f"search_metric must be ppl or kl, got {self.search_metric!r}")
        if not 0 < self.min_keep <= self.max_keep <= 1:
            raise FrontierError(
                f"need 0 < min_keep <= max_keep <= 1 (got {self.min_keep}, {self.max_keep})"
            )
        if self.min_keep < self.max_keep and not 0 < self.step <= self.max_keep - self.min_keep:
            raise FrontierError(f"step {self.step} does not fit in [min_keep, max_keep]")
        for name in (
            "calibration_tokens",
            "search_tokens",
            "report_tokens",
            "trials",
            "multiple",
            "calibration_seq_len",
        ):
            if getattr(self, name) < 1:
                raise FrontierError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("groups", "subtasks"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise FrontierError(f"{name} must be positive, got {value}")
        if self.search_window is not None and self.search_window < 2:
            raise FrontierError(f"search_window must be at least 2, got {self.search_window}")
        for name in ("task_docs", "report_docs", "max_task_docs", "report_first_docs"):
            self._check_docs(name)
        if self.max_task_docs is not None and self.confidence is None:
            raise FrontierError("adaptive documents (max_task_docs) need a confidence level")
        if self.confidence is not None and not 0 < self.confidence < 1:
            raise FrontierError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.fit_tokens is not None and self.fit_tokens < 1:
            raise FrontierError(f"fit_tokens must be positive, got {self.fit_tokens}")
        if self.timeout is not None and self.timeout <= 0:
            raise FrontierError(f"timeout must be positive, got {self.timeout}")

    def _check_docs(self, name: str) -> None:
        value = getattr(self, name)
        if value is None and name in ("report_docs", "max_task_docs", "report_first_docs"):
            return
        counts = value if isinstance(value, dict) else {"default": value}
        for task, n in counts.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise FrontierError(f"{name}: {task} must be a positive integer, got {n!r}")
        if isinstance(value, dict):
            stray = sorted(set(value) - set(self.tasks) - {"default"})
            if stray:
                raise FrontierError(f"{name} names task(s) not in tasks: {', '.join(stray)}")
            missing = [t for t in self.tasks if t not in value]
            if missing and "default" not in value:
                raise FrontierError(f"{name} has no count for {', '.join(missing)}; add default")

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: Path, **overrides: Any) -> StudySpec:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise FrontierError(f"cannot read spec {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise FrontierError(f"spec {path} is not valid TOML: {exc}") from None
        return cls.from_dict(
            {**data, **{k: v for k, v in overrides.items() if v is not None}}, where=str(path)
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "spec") -> StudySpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise FrontierError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        data = dict(data)
        if isinstance(data.get("slos"), str):
            data["slos"] = [data["slos"]]
        if isinstance(data.get("check_texts"), str):
            data["check_texts"] = [data["check_texts"]]
        for key in ("tasks", "families"):
            if isinstance(data.get(key), str):
                data[key] = [t for t in data[key].split(",") if t]
        try:
            return cls(**data)
        except TypeError as exc:
            raise FrontierError(f"{where}: {exc}") from None

    def replace(self, **changes: Any) -> StudySpec:
        return dataclasses.replace(self, **changes)

    # -- identity ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["slos"], out["tasks"] = list(self.slos), list(self.tasks)
        out["check_texts"] = list(self.check_texts)
        return out

    def measured_settings(self) -> dict[str, Any]:
        """The fields that change what a trial measures (the fingerprint's content).

        Fields added after studies were stored are left out at the value that means what
        those studies did, so their fingerprints still match. The device counts by its
        kind (``cuda:1`` measures what ``cuda:0`` does), ``auto`` as this machine resolves it.
        """
        if "auto" in (self.device, self.dtype):  # what this machine resolves them to
            return self.resolved().measured_settings()
        settings = {**self.to_dict(), "device": device_kind(self.device)}
        return {
            k: v
            for k, v in settings.items()
            if k not in EXECUTION_FIELDS and not (k in LEGACY_VALUES and LEGACY_VALUES[k] == v)
        }

    def resolved(self) -> StudySpec:
        """The spec with ``auto`` device and dtype replaced by what this machine has."""
        from frontier.models.device import resolve_device, resolve_dtype

        device = resolve_device(self.device)
        return self.replace(device=device, dtype=resolve_dtype(self.dtype, device))

    def fingerprint(self, model_fingerprint: str) -> str:
        payload = json.dumps(
            {**self.measured_settings(), "model_fingerprint": model_fingerprint}, sort_keys=True
        )
        return hashlib.blake2b(payload.encode(), digest_size=10).hexdigest()

    @property
    def study_name(self) -> str:
        if self.study:
            return self.study
        base = Path(self.model).name if Path(self.model).exists() else self.model
        return base.replace("/", "--").removesuffix(".gguf")

    @property
    def storage_url(self) -> str:
        if self.storage:
            return self.storage
        return f"sqlite:///studies/{self.study_name}.db"


_FIELDS = {f.name: f for f in dataclasses.fields(StudySpec)}


def stored_spec(study: Any) -> StudySpec:
    """The spec an Optuna ``study`` made by frontier stores (its legacy values filled in
    for fields added since)."""
    from frontier.study.schema import ATTR_SPEC

    data = study.user_attrs.get(ATTR_SPEC)
    if not isinstance(data, dict):
        raise FrontierError(f"study {study.study_name!r} was not made by frontier (no spec)")
    # a study stored before a field existed did what the field's legacy value means
    return StudySpec.from_dict({**LEGACY_VALUES, **data}, where=f"study {study.study_name}")
