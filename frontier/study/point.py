"""One trial's figures, search-time or held-out: the value a study summary is made of.

Fractions, not percentages: ``mlp_removed=0.3`` means 30% of the MLP parameters are gone.
The verdicts computed from these figures are in :mod:`frontier.study.verdicts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from frontier.errors import FrontierError

__all__ = ["Stage", "TrialPoint", "as_interval"]

Stage = Literal["search", "final"]
_STAGES: tuple[str, ...] = ("search", "final")


@dataclass(frozen=True)
class TrialPoint:
    """One trial's figures.

    ``stage`` says which figures these are: ``search`` (what the sampler saw) or ``final``
    (the Pareto set re-measured at report fidelity: held-out text, report documents).
    ``loss`` and ``ppl_ratio`` are None when not measured (a KL search has no perplexity);
    ``tasks`` lacks the tasks not run (staged evaluation skips them for a trial that
    misses a cheap SLO or is dominated on size and the cheap signal).
    ``violations`` maps each SLO (canonical text) to its constraint value on these
    figures: > 0 violated, None not measured. ``feasible`` is the study's verdict: for
    search figures Optuna's (a complete trial with no violated constraint), for final
    ones the final record's (every SLO measured and met).
    """

    number: int
    mlp_removed: float
    params_removed: float
    loss: float | None
    ppl_ratio: float | None
    tasks: Mapping[str, float] = field(hash=False)  # a dict: hash the rest
    feasible: bool
    pareto: bool
    chosen: bool
    widths: tuple[int, ...]
    full: tuple[int, ...]
    stage: Stage
    violations: Mapping[str, float | None] = field(default_factory=dict, hash=False)
    # retention as measured with the trial, paired on the documents it used, and its
    # interval; records from before paired measurement have neither
    retained: Mapping[str, float] = field(default_factory=dict, hash=False)
    retained_ci: Mapping[str, tuple[float, float]] = field(default_factory=dict, hash=False)
    # final figures on fewer held-out tokens, measured only to spread the front for the
    # fits and the report: never a candidate for the chosen point
    spread: bool = False
    # the perplexity ratio's paired interval over the text's windows (at the study's
    # confidence); None for records from before it and for KL searches
    ppl_ci: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", {str(k).lower(): float(v) for k, v in self.tasks.items()})
        object.__setattr__(
            self, "retained", {str(k).lower(): float(v) for k, v in self.retained.items()}
        )
        object.__setattr__(
            self,
            "retained_ci",
            {str(k).lower(): (float(v[0]), float(v[1])) for k, v in self.retained_ci.items()},
        )
        if self.ppl_ci is not None:
            object.__setattr__(self, "ppl_ci", (float(self.ppl_ci[0]), float(self.ppl_ci[1])))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "full", tuple(int(f) for f in self.full))
        object.__setattr__(
            self, "violations", {str(k): _opt_float(v) for k, v in self.violations.items()}
        )
        if not 0.0 <= self.mlp_removed < 1.0:
            raise FrontierError(
                f"trial {self.number}: mlp_removed must be a fraction in [0, 1), "
                f"got {self.mlp_removed}"
            )
        if self.stage not in _STAGES:
            raise FrontierError(f"trial {self.number}: stage must be search or final")
        if len(self.widths) != len(self.full):
            raise FrontierError(
                f"trial {self.number}: {len(self.widths)} widths for {len(self.full)} layers"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "mlp_removed": self.mlp_removed,
            "params_removed": self.params_removed,
            "loss": self.loss,
            "ppl_ratio": self.ppl_ratio,
            "tasks": dict(sorted(self.tasks.items())),
            "feasible": self.feasible,
            "pareto": self.pareto,
            "chosen": self.chosen,
            "widths": list(self.widths),
            "full": list(self.full),
            "stage": self.stage,
            "violations": dict(self.violations),
            "retained": dict(sorted(self.retained.items())),
            "retained_ci": {k: list(v) for k, v in sorted(self.retained_ci.items())},
            "spread": self.spread,
            "ppl_ci": None if self.ppl_ci is None else list(self.ppl_ci),
        }

    # -- verdicts -----------------------------------------------------------------------
    @property
    def missed(self) -> tuple[str, ...]:
        """The SLOs these figures miss, in SLO order; an SLO not measured counts as missed
        (``"tasks>=90% (not measured)"``), as in the search, where such a trial is never
        feasible."""
        return tuple(
            slo if v is not None else f"{slo} (not measured)"
            for slo, v in self.violations.items()
            if v is None or v > 0
        )

    @property
    def worst_violation(self) -> float | None:
        """The largest violation over the measured SLOs (0 when all are met), or None
        when no SLO was measured."""
        known = [max(v, 0.0) for v in self.violations.values() if v is not None]
        return max(known) if known else None

    @property
    def total_violation(self) -> float:
        """The sum of violations over the measured SLOs (met ones count 0)."""
        return sum(max(v, 0.0) for v in self.violations.values() if v is not None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialPoint:
        return cls(
            number=int(data["number"]),
            mlp_removed=float(data["mlp_removed"]),
            params_removed=float(data["params_removed"]),
            loss=_opt_float(data.get("loss")),
            ppl_ratio=_opt_float(data.get("ppl_ratio")),
            tasks={str(k): float(v) for k, v in data.get("tasks", {}).items()},
            feasible=bool(data["feasible"]),
            pareto=bool(data["pareto"]),
            chosen=bool(data["chosen"]),
            widths=tuple(data["widths"]),
            full=tuple(data["full"]),
            stage=cast(Stage, data["stage"]),
            violations=dict(data.get("violations") or {}),
            retained=dict(data.get("retained") or {}),
            retained_ci={k: tuple(v) for k, v in (data.get("retained_ci") or {}).items()},
            spread=bool(data.get("spread", False)),
            ppl_ci=as_interval(data.get("ppl_ci")),
        )


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def as_interval(x: Any) -> tuple[float, float] | None:
    """An interval as stored (a JSON list; an infinite end as "inf"), or None where it is
    not a pair of numbers."""
    if not isinstance(x, (list, tuple)) or len(x) != 2:
        return None
    low, high = (_opt_float(v) for v in x)
    return None if low is None or high is None else (low, high)
