"""Reading a finished or running study: one row per trial, the Pareto set, the chosen point."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from frontier.errors import FrontierError
from frontier.plan import Plan
from frontier.search.find import choose, final_record, nearest_trial
from frontier.search.trial import (
    ATTR_FAILED,
    ATTR_PLAN,
    ATTR_SCREENED,
    ATTR_SEARCH,
    ATTR_TIMING,
    ATTR_WARM,
)


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    plan: Plan | None
    search: dict[str, Any]
    final: dict[str, Any] | None
    feasible: bool
    pareto: bool
    chosen: bool
    warm_start: str | None
    note: str | None
    timing: dict[str, float]
    constraints: dict[str, float] = field(default_factory=dict)  # SLO -> violation (> 0)

    @property
    def mlp_removed(self) -> float | None:
        kept = self.search.get("mlp_kept")
        return None if kept is None else 1.0 - float(kept)

    @property
    def params_removed(self) -> float | None:
        kept = self.search.get("params_kept")
        return None if kept is None else 1.0 - float(kept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.number,
            "state": self.state,
            "feasible": self.feasible,
            "pareto": self.pareto,
            "chosen": self.chosen,
            "mlp_removed": self.mlp_removed,
            "params_removed": self.params_removed,
            "search": self.search,
            "final": self.final,
            "widths": list(self.plan.widths) if self.plan else None,
            "warm_start": self.warm_start,
            "note": self.note,
            "timing": self.timing,
        }


def rows(study: optuna.Study, *, all_trials: bool = False) -> list[TrialRow]:
    pareto = {t.number for t in study.best_trials}
    chosen = choose(study)
    chosen_n = chosen.number if chosen is not None else None
    out = []
    for t in study.get_trials(deepcopy=False):
        if not all_trials and t.number not in pareto:
            continue
        out.append(row(study, t, pareto=t.number in pareto, chosen=t.number == chosen_n))
    return out


def row(study: optuna.Study, t: FrozenTrial, *, pareto: bool, chosen: bool) -> TrialRow:
    plan_d = t.user_attrs.get(ATTR_PLAN)
    feasible = t.state == TrialState.COMPLETE and all(v <= 0 for v in t.constraints.values())
    return TrialRow(
        number=t.number,
        state=t.state.name.lower(),
        plan=Plan.from_dict(plan_d) if isinstance(plan_d, dict) else None,
        search=dict(t.user_attrs.get(ATTR_SEARCH, {})),
        final=final_record(study, t),
        feasible=feasible,
        pareto=pareto,
        chosen=chosen,
        warm_start=t.user_attrs.get(ATTR_WARM),
        note=t.user_attrs.get(ATTR_SCREENED) or t.user_attrs.get(ATTR_FAILED),
        timing=dict(t.user_attrs.get(ATTR_TIMING, {})),
        constraints=dict(t.constraints),
    )


def chosen_row(study: optuna.Study) -> TrialRow | None:
    t = choose(study)
    return None if t is None else row(study, t, pareto=True, chosen=True)


def nearest_row(study: optuna.Study) -> TrialRow | None:
    t = nearest_trial(study)
    return None if t is None else row(study, t, pareto=False, chosen=False)


def pareto(study: optuna.Study, *, all_trials: bool = False) -> list[TrialRow]:
    """``frontier pareto``: the Pareto set's rows (``all_trials``: every trial's)."""
    return rows(study, all_trials=all_trials)


def show(study: optuna.Study, trial: int | None = None) -> TrialRow:
    """``frontier show``: trial ``trial``'s row, by default the chosen trial's."""
    return trial_row(study, chosen_number(study) if trial is None else trial)


def chosen_number(study: optuna.Study) -> int:
    """The chosen trial's number; an error naming the nearest trial where none is chosen."""
    t = choose(study)
    if t is not None:
        return t.number
    near = nearest_trial(study)
    raise FrontierError(
        f"study {study.study_name!r} has no chosen trial (none meets every SLO on held-out "
        "figures)"
        + (f"; the nearest is trial {near.number}" if near is not None else "")
        + "; pass a trial number after the study's name"
    )


def trial_row(study: optuna.Study, number: int) -> TrialRow:
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise FrontierError(
            f"study {study.study_name!r} has no trial {number} (trials 0..{len(trials) - 1})"
        )
    pareto = {t.number for t in study.best_trials}
    chosen = choose(study)
    return row(
        study,
        trials[number],
        pareto=number in pareto,
        chosen=chosen is not None and chosen.number == number,
    )
