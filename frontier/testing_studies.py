"""Studies for tests without a real search: settings small enough for a tiny model, a
made-up study summary with known laws, and an Optuna study stored by hand.

Re-exported by :mod:`frontier.testing`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from frontier.study.summary import StudySummary

# Study settings small enough for a tiny model: a trial takes well under a second.
SMALL_STUDY: dict[str, int] = {
    "calibration_tokens": 512,
    "calibration_seq_len": 64,
    "search_tokens": 256,
    "report_tokens": 512,
    "seq_len": 64,
    "multiple": 4,
}


def small_spec(model: Any, storage: str, **overrides: Any) -> Any:
    """A :class:`~frontier.study.spec.StudySpec` of :data:`SMALL_STUDY` size on ``model``
    (``ppl<1.5``, 12 trials, study ``s`` in ``storage``); ``overrides`` win."""
    from frontier.study.spec import StudySpec

    base: dict[str, Any] = {
        "model": str(model),
        "slos": ("ppl<1.5",),
        "trials": 12,
        "study": "s",
        "storage": storage,
        **SMALL_STUDY,
    }
    return StudySpec.from_dict({**base, **overrides})


@dataclass(frozen=True)
class TinyStudy:
    """A finished :func:`small_spec` study on the tiny llama (``ppl<1.5``, 6 trials, study
    ``s``), copied for one test: its ``spec`` points at the test's own database, its
    ``chosen`` trial is the one the study chose. See the ``tiny_study`` test fixture."""

    spec: Any  # StudySpec
    study: Any  # optuna.Study
    chosen: Any  # optuna FrozenTrial

    @property
    def name(self) -> str:
        return str(self.spec.study_name)

    @property
    def url(self) -> str:
        return str(self.spec.storage_url)

    @property
    def model(self) -> str:
        return str(self.spec.model)


# Some of the same settings as `frontier find` flags (what the reliability tests' studies use).
SMALL_STUDY_FLAGS: list[str] = [
    arg
    for key in ("search_tokens", "report_tokens", "seq_len", "calibration_tokens")
    for arg in ("--" + key.replace("_", "-"), str(SMALL_STUDY[key]))
]


def synthetic_summary(
    *,
    name: str = "synthetic",
    model: str = "synthetic-12l",
    n_trials: int = 40,
    n_layers: int = 12,
    width: int = 1536,
    loss_law: tuple[float, float, float] = (2.6, 0.6, 2.4),
    tasks: Mapping[str, tuple[float, float]] | None = None,
    slos: tuple[str, ...] = ("ppl<1.6", "tasks>=90%"),
    noise: float = 0.004,
    seed: int = 0,
    final: bool = True,
) -> StudySummary:
    """A deterministic made-up study with known laws, for tests and demos.

    Loss follows ``L0 + a·r + b·r²`` (``loss_law``) and each task ``A0 − c·r`` (``tasks``:
    name -> (A0, c)) in r = MLP fraction removed, plus Gaussian noise of sd ``noise``.
    Tasks are only "measured" on trials within 2x the ppl bound, as a staged search would;
    feasibility, the Pareto set (most removed vs lowest ppl ratio among feasible trials)
    and the chosen point (most removed on it) follow from the SLOs.
    """
    import numpy as np

    from frontier.study.slo import SLO, parse_slos
    from frontier.study.summary import StudySummary, TrialPoint, feasible, slo_violations

    rng = np.random.default_rng(seed)
    laws = (
        dict(tasks)
        if tasks is not None
        else {"arc_easy": (0.70, 0.45), "hellaswag": (0.42, 0.20), "piqa": (0.72, 0.25)}
    )
    l0, a, b = loss_law
    full = (width,) * n_layers
    parsed: tuple[SLO, ...] = parse_slos(slos)
    ppl_cap = min((s.threshold for s in parsed if s.metric == "ppl"), default=math.inf)
    base_tasks = {t: a0 for t, (a0, _) in laws.items()}

    def measure(
        widths: tuple[int, ...], number: int, stage: Literal["search", "final"], shift: float
    ) -> TrialPoint:
        r = 1.0 - sum(widths) / sum(full)
        loss = l0 + shift + a * r + b * r * r + float(rng.normal(0, noise))
        ratio = math.exp(loss - l0 - shift)
        measured = ratio <= 2 * ppl_cap or stage == "final"
        accs = (
            {t: a0 - c * r + float(rng.normal(0, noise)) for t, (a0, c) in laws.items()}
            if measured
            else {}
        )
        return TrialPoint(
            number=number,
            mlp_removed=r,
            params_removed=0.62 * r,  # MLPs are ~62% of a small Llama's parameters
            loss=loss,
            ppl_ratio=ratio,
            tasks=accs,
            feasible=False,
            pareto=False,
            chosen=False,
            widths=widths,
            full=full,
            stage=stage,
        )

    raw = []
    for i in range(n_trials):
        keep = rng.uniform(0.35, 1.0, n_layers) ** rng.uniform(0.3, 1.5)
        widths = tuple(max(8, int(np.rint(k * width / 8)) * 8) for k in keep)
        raw.append(measure(widths, i, "search", 0.0))

    def ok(p: TrialPoint) -> bool:
        return feasible(slo_violations(p, base_tasks, parsed))

    passing = [p for p in raw if ok(p)]
    front = [
        p
        for p in passing
        if not any(
            q.mlp_removed >= p.mlp_removed
            and (q.ppl_ratio or math.inf) <= (p.ppl_ratio or math.inf)
            and (q.mlp_removed, q.ppl_ratio) != (p.mlp_removed, p.ppl_ratio)
            for q in passing
        )
    ]
    chosen = max(front, key=lambda p: p.mlp_removed).number if front else None
    front_ids = {p.number for p in front}
    points = tuple(
        replace(p, feasible=ok(p), pareto=p.number in front_ids, chosen=p.number == chosen)
        for p in raw
    )
    finals: tuple[TrialPoint, ...] = ()
    if final:
        # Held-out text: a slightly higher unpruned loss, the same law.
        finals = tuple(
            replace(
                f := measure(p.widths, p.number, "final", 0.05),
                feasible=ok(f),
                pareto=True,
                chosen=p.chosen,
            )
            for p in points
            if p.pareto
        )
    return StudySummary(
        name=name,
        model=model,
        baseline_loss=l0,
        baseline_ppl=math.exp(l0),
        baseline_tasks=base_tasks,
        slos=slos,
        points=points,
        final=finals,
        protocol={
            "search_text": {
                "source": "hf:wikitext:wikitext-2-raw-v1",
                "role": "search",
                "tokens": 32768,
            },
            "report_text": {
                "source": "hf:wikitext:wikitext-2-raw-v1",
                "role": "test",
                "tokens": 262144,
            },
            "context_length": 1024,
            "tasks": sorted(laws),
            "docs": {"search": 200, "report": 1000},
            "lm_eval_version": "0.4.9",
            "sampler": "TPESampler(seed=0, multivariate=True)",
            "trials": n_trials,
            "wall_time_s": 1234.5,
            "synthetic": True,
        },
    )


# -- a study stored by hand ------------------------------------------------------------------
@dataclass(frozen=True)
class HandTrial:
    """One measured trial of :func:`store_study`: its size and ppl ratio, its Optuna state
    (complete, or pruned: screened) and, if it was re-measured, its held-out ppl ratio."""

    params_kept: float
    ppl_ratio: float
    state: str = "complete"
    final_ppl_ratio: float | None = None


def store_study(
    url: str,
    trials: Sequence[HandTrial],
    *,
    name: str = "hand",
    slos: tuple[str, ...] = ("ppl<1.5", "params<=60%"),
    full: tuple[int, ...] = (64, 64, 64),
) -> Any:
    """An Optuna study as ``frontier find`` leaves it, from hand-picked figures: no model.

    Each trial gets a plan, a search record, timing and its SLO constraint values (computed
    from its figures with the SLO language); a trial with ``final_ppl_ratio`` also gets a
    final record. Returns the ``optuna.Study``.
    """
    import optuna

    from frontier.pruning.plan import Plan
    from frontier.study import schema
    from frontier.study.slo import TrialMetrics, parse_slos
    from frontier.study.spec import StudySpec
    from frontier.study.summary import feasible

    parsed = parse_slos(slos)

    def record(kept: float, ratio: float) -> dict[str, Any]:
        return {
            "params_kept": kept,
            "mlp_kept": kept,
            "total_params": 1000.0 * kept,
            "ppl_ratio": ratio,
            "ppl": 10.0 * ratio,
            "nll": math.log(10.0 * ratio),
        }

    def violations(kept: float, ratio: float) -> dict[str, float | None]:
        metrics = TrialMetrics(ppl_ratio=ratio, params_kept=kept, mlp_kept=kept)
        return {str(s): s.violation(metrics) for s in parsed}

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=url, directions=["minimize"] * 2)
    spec = StudySpec(model="hand-model", slos=slos, study=name, storage=url)
    study.set_user_attr(schema.ATTR_SPEC, spec.to_dict())
    study.set_user_attr(
        schema.ATTR_BASELINE,
        {"search_ppl": {"value": 1.0, "raw": 10.0, "details": {"baseline_nll": math.log(10)}}},
    )
    study.set_user_attr(schema.ATTR_PROTOCOL, {"text": "hand-made figures"})
    for number, t in enumerate(trials):
        widths = tuple(max(8, round(f * t.params_kept / 8) * 8) for f in full)
        attrs: dict[str, Any] = {
            schema.ATTR_PLAN: Plan(widths, full).to_dict(),
            schema.ATTR_SEARCH: record(t.params_kept, t.ppl_ratio),
            schema.ATTR_TIMING: {"total": 1.0, "forward": 0.5, "surgery": 0.1},
        }
        if t.state == "pruned":
            attrs[schema.ATTR_SCREENED] = "screened by hand"
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState[t.state.upper()],
                values=[t.params_kept, t.ppl_ratio] if t.state == "complete" else None,
                user_attrs=attrs,
                constraints={
                    k: v for k, v in violations(t.params_kept, t.ppl_ratio).items() if v is not None
                },
            )
        )
        if t.final_ppl_ratio is not None:
            vs = violations(t.params_kept, t.final_ppl_ratio)
            final = {
                **record(t.params_kept, t.final_ppl_ratio),
                "violations": vs,
                "feasible": feasible(vs),
            }
            study.set_user_attr(schema.final_key(number), final)
    return study
