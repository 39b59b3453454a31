"""Everything a worker needs to evaluate trials, built once from a spec."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from frontier.errors import FrontierError
from frontier.importance import Scores, calibrate
from frontier.models import LoadedModel, load_model
from frontier.pruning.operator import PruningOperator
from frontier.search.space import Space
from frontier.study.measured import Side
from frontier.study.metrics import objective_metrics
from frontier.study.schema import ATTR_MODEL_FINGERPRINT
from frontier.study.slo import SLO, parse_slos
from frontier.study.spec import StudySpec
from objectives import Objective, create

if TYPE_CHECKING:
    import optuna

Progress = Callable[[str], None]
CHECK_PREFIX = "check:"  # report objectives on the spec's check_texts


def build_operator(
    spec: StudySpec, lm: LoadedModel, *, say: Progress | None = None
) -> PruningOperator:
    """The study's pruning operator on ``lm`` (unpruned), from the cached calibration pass."""
    (say or (lambda _m: None))(
        f"calibrating ({spec.criterion}{', refit' if spec.refit else ''}, "
        f"{spec.calibration_tokens} tokens)"
    )
    scores = calibrate(
        lm,
        spec.criterion,
        text=spec.calibration_text,
        n_tokens=spec.calibration_tokens,
        seq_len=spec.calibration_seq_len,
        grams=spec.refit,
        progress=say,
    )
    return PruningOperator.for_model(
        lm, scores, refit=spec.refit, compensate=spec.compensate, progress=say
    )


def study_model(study: optuna.Study, spec: StudySpec, *, device: str | None = None) -> LoadedModel:
    """The unpruned model ``study`` searched (``spec``: its stored spec), loaded in the
    study's dtype on ``device`` (default: the study's); other weights are refused."""
    lm = load_model(
        spec.model,
        dtype=spec.dtype,
        device=device or spec.device,
        trust_remote_code=spec.trust_remote_code,
    )
    if lm.fingerprint != study.user_attrs.get(ATTR_MODEL_FINGERPRINT):
        raise FrontierError(f"{spec.model} now has other weights than when the study ran")
    return lm


def check_text_sources(sources: tuple[str, ...]) -> None:
    """A check text that cannot be read is a one-line error before anything is computed."""
    from frontier.data.text import TextSource

    for source in sources:
        TextSource(source).documents("report")


@dataclass
class SearchContext:
    spec: StudySpec
    lm: LoadedModel
    scores: Scores
    pruner: PruningOperator  # selection, refit and surgery: applies every plan
    space: Space
    slos: tuple[SLO, ...]
    cheap: Objective
    size: Objective
    tasks: Objective | None
    seconds: dict[str, float] = field(default_factory=dict)
    #: objectives an SLO metric reads (``speed``: frontier.study.metrics), by metric name
    extras: dict[str, Objective] = field(default_factory=dict)
    _report: dict[str, Objective] = field(default_factory=dict)
    _fit: dict[str, Objective] = field(default_factory=dict)
    _validation: dict[str, Objective] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return self.spec.fingerprint(self.lm.fingerprint)

    @property
    def search_side(self) -> Side:
        """Task floors at search time: a trial that might pass is kept."""
        return "estimate" if self.spec.confidence is None else "optimistic"

    @property
    def final_side(self) -> Side:
        """Task floors in the final re-measurement: met with the stated confidence."""
        return "estimate" if self.spec.confidence is None else "pessimistic"

    def report_objectives(self) -> dict[str, Objective]:
        """Final-report objectives on held-out text and report documents (built on first use)."""
        if not self._report:
            self._report = report_objectives(self.spec, self.lm)
        return self._report

    def fit_objectives(self) -> dict[str, Objective]:
        """The report objectives with perplexity on the first ``fit_tokens`` of the held-out
        text (the report's own when ``fit_tokens`` is unset or equal), for Pareto trials
        re-measured only to spread the front; no check texts."""
        report = self.report_objectives()
        n = self.spec.fit_tokens
        if n is None or n >= self.spec.report_tokens:
            return report
        if not self._fit:
            ppl = _held_out_ppl(self.spec, self.lm, self.spec.text, n)
            self._fit = {"ppl": ppl, **({"tasks": report["tasks"]} if "tasks" in report else {})}
        return self._fit

    def validation_objective(self, n_tokens: int) -> Objective:
        """Perplexity on the *validation* part of the evaluation text: ``n_tokens`` of its
        report part after the first ``report_tokens`` (which the reported figures read),
        so what is chosen on it is neither the search text nor the reported text."""
        if "ppl" not in self._validation:
            ppl = create(
                "ppl",
                text=self.spec.text,
                role="report",
                n_tokens=n_tokens,
                seq_len=self.spec.seq_len,
                skip=self.spec.report_tokens,
            )
            ppl.prepare(self.lm)
            self._validation["ppl"] = ppl
        return self._validation["ppl"]

    def baseline(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, obj in (("search_" + self.spec.search_metric, self.cheap), ("size", self.size)):
            out[key] = _baseline_of(obj, self.lm)
        if self.tasks is not None:
            out["search_tasks"] = _baseline_of(self.tasks, self.lm)
        for name, obj in self.extras.items():
            out[name] = _baseline_of(obj, self.lm)
        return out


def search_objective(spec: StudySpec) -> Objective:
    """The signal every trial gets: ``spec.search_metric`` on ``search_tokens`` of the
    search text, in windows of ``search_window`` tokens strided over all of it (studies
    from before the field: its first tokens, in windows of ``seq_len``)."""
    if spec.search_window is None:
        seq_len, strided = spec.seq_len, False
    else:
        seq_len, strided = min(spec.search_window, spec.search_tokens), True
    return create(
        spec.search_metric,
        text=spec.text,
        role="search",
        n_tokens=spec.search_tokens,
        seq_len=seq_len,
        strided=strided,
    )


def report_objectives(
    spec: StudySpec, lm: LoadedModel, *, replay: Mapping[str, int] | None = None
) -> dict[str, Objective]:
    """The final report's objectives (held-out text, report documents), prepared on ``lm``.

    ``lm`` must be the unpruned model: its figures are the baselines that ratios and
    retention are taken against (read from the disk cache when already measured).
    ``replay``: the tasks read exactly these looks (a final record's, ``verify``).
    """
    out: dict[str, Objective] = {"ppl": _held_out_ppl(spec, lm, spec.text, spec.report_tokens)}
    for source in spec.check_texts:
        out[CHECK_PREFIX + source] = _held_out_ppl(spec, lm, source, spec.report_tokens)
    if spec.tasks:
        tasks = _tasks_objective(spec, role="report", replay=replay)
        tasks.prepare(lm)
        out["tasks"] = tasks
    return out


def _held_out_ppl(spec: StudySpec, lm: LoadedModel, text: str, n_tokens: int) -> Objective:
    """Perplexity on the report part of ``text`` (``n_tokens``), prepared on ``lm``, with
    its paired interval over the windows at the study's confidence."""
    options: dict[str, Any] = {}
    if spec.confidence is not None:
        options["confidence"] = spec.confidence
    ppl = create(
        "ppl", text=text, role="report", n_tokens=n_tokens, seq_len=spec.seq_len, **options
    )
    ppl.prepare(lm)
    return ppl


def _baseline_of(obj: Objective, lm: LoadedModel) -> dict[str, Any]:
    m = obj.evaluate(lm)
    return {"value": m.value, "raw": m.raw, "baseline": m.baseline, "details": m.details}


def _tasks_objective(
    spec: StudySpec, *, role: str, replay: Mapping[str, int] | None = None
) -> Objective:
    """The tasks objective of ``role``; ``replay``: each task's looks a final record
    used, read again (report role, the final stage's looks)."""
    n_docs = spec.task_docs if role == "search" else spec.report_docs
    options: dict[str, Any] = {}
    if spec.confidence is not None:
        options["confidence"] = spec.confidence
    if role == "search" and spec.max_task_docs is not None:
        options["max_docs"] = spec.max_task_docs
        options["floors"] = parse_slos(spec.slos, known_tasks=list(spec.tasks))
    looks = role == "report" and spec.report_first_docs is not None
    if looks and spec.confidence is not None:  # (nothing to decide on point estimates)
        options["first_docs"] = spec.report_first_docs
        options["floors"] = parse_slos(spec.slos, known_tasks=list(spec.tasks))
        if replay:
            options["looks"] = dict(replay)
    return create(
        "tasks",
        tasks=list(spec.tasks),
        n_docs=n_docs,
        role=role,
        seed=spec.seed,
        batch_size=spec.task_batch_size,
        scorer=spec.task_scorer,
        subtasks=spec.subtasks,
        **options,
    )


def check_tasks(tasks: tuple[str, ...], progress: Progress) -> None:
    """Unknown task names are one-line errors; the offline mirror is built if missing."""
    from frontier.data.mirror import TASKS, build_mirror

    unknown = [t for t in tasks if t not in TASKS and not t.startswith("mmlu_")]
    if unknown:
        raise FrontierError(
            f"unknown task(s) {', '.join(unknown)}; available offline: {', '.join(TASKS)} "
            "(and mmlu_<subject>)"
        )
    base = sorted({"mmlu" if t.startswith("mmlu_") else t for t in tasks})
    build_mirror(tasks=base, progress=progress)


def build_context(spec: StudySpec, *, progress: Progress | None = None) -> SearchContext:
    """Load the model on the spec's device (``auto`` resolved here: the context's spec
    names the device and dtype used), calibrate, and measure the unpruned baselines."""
    say = progress or (lambda _m: None)
    spec = spec.resolved()
    seconds: dict[str, float] = {}
    slos = parse_slos(spec.slos, known_tasks=list(spec.tasks) or None)
    for slo in slos:
        if slo.needs == "tasks" and not spec.tasks:
            raise FrontierError(f"SLO '{slo}' needs task accuracy; add --tasks {slo.metric}")
    if spec.tasks:
        check_tasks(spec.tasks, say)
    check_text_sources(spec.check_texts)
    from frontier.search.families import get_family

    for name in spec.families:  # an unknown family is a one-line error before the model loads
        get_family(name)
    t = time.perf_counter()
    say(f"loading {spec.model} on {spec.device} in {spec.dtype}")
    lm = load_model(
        spec.model,
        dtype=spec.dtype,
        device=spec.device,
        trust_remote_code=spec.trust_remote_code,
        progress=progress,
    )
    seconds["load"] = time.perf_counter() - t
    t = time.perf_counter()
    pruner = build_operator(spec, lm, say=say)
    where = pruner.refitter.placement() if pruner.refitter is not None else {}
    if where.get("host_layers") or where.get("disk_layers"):
        say(
            f"refit factors: {where['resident_layers']} layer(s) on {where['device']}, "
            f"{where['host_layers']} in host memory, {where['disk_layers']} on disk "
            "(read per trial)"
        )
    scores = pruner.scores
    seconds["calibration"] = time.perf_counter() - t
    space = Space.build(
        pruner.full,
        lo=spec.min_keep,
        hi=spec.max_keep,
        step=spec.step,
        groups=spec.groups,
        multiple=spec.multiple,
    )
    say("measuring the unpruned model")
    t = time.perf_counter()
    cheap = search_objective(spec)
    cheap.prepare(lm)
    size = create("params")
    size.prepare(lm)
    tasks = None
    if spec.tasks:
        tasks = _tasks_objective(spec, role="search")
        tasks.prepare(lm)
        for line in tasks.warnings():
            say(f"warning: {line}")
    extras: dict[str, Objective] = {}
    for row in objective_metrics([s.metric for s in slos]):
        assert row.objective is not None
        extras[row.name] = create(row.objective)
        extras[row.name].prepare(lm)
    seconds["baseline"] = time.perf_counter() - t
    return SearchContext(
        spec, lm, scores, pruner, space, slos, cheap, size, tasks, seconds, extras=extras
    )
