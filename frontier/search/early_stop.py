"""The early stop applied to a running study: read its stored trials, decide, record.

The rule is :mod:`frontier.study.early_stop`'s. It reads the study's stored trials, never
what one process saw, so a parallel worker and a resumed run decide as the process that
ran the trials did: every process with the early stop on asks after each of its trials
and stops once the stored trials say so, and a resumed run with it on runs no more. The
decision is recorded on the study (``frontier:early_stop``) for ``show``, ``pareto`` and
the report; a run with the early stop off clears it, since it searches on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from frontier.search import storage as st
from frontier.study.early_stop import EarlyStop, Step, decide, describe
from frontier.study.schema import ATTR_EARLY_STOP, ATTR_SEARCH, ATTR_WARM
from frontier.study.verdicts import feasible

__all__ = ["StopWhenFlat", "check_stop", "lift_stop", "steps_of", "stopped_early"]


def steps_of(study: optuna.Study) -> list[Step]:
    """The study's finished trials as the rule reads them."""
    out = []
    for t in study.get_trials(deepcopy=False):
        if not st.finished(t):
            continue
        kept = (t.user_attrs.get(ATTR_SEARCH) or {}).get("mlp_kept")
        out.append(
            Step(
                number=t.number,
                warm=bool(t.user_attrs.get(ATTR_WARM)),
                feasible=t.state == TrialState.COMPLETE and feasible(t.constraints),
                mlp_removed=None if kept is None else 1.0 - float(kept),
            )
        )
    return out


def stopped_early(study: optuna.Study) -> dict[str, Any] | None:
    """The study's recorded early stop, or None."""
    rec = study.user_attrs.get(ATTR_EARLY_STOP)
    return rec if isinstance(rec, dict) else None


def check_stop(study: optuna.Study, rule: EarlyStop) -> dict[str, Any] | None:
    """The early stop, once the rule says the search is over on the study's stored trials
    (recorded on the study, unless it is already); None while the search goes on (a
    record left from before, lifted by trials that improved since, is cleared)."""
    steps = steps_of(study)
    d = decide(steps, rule)
    rec = stopped_early(study)
    if not d.stop:
        if rec is not None:
            study.set_user_attr(ATTR_EARLY_STOP, None)
        return None
    if rec is None or rec.get("trial") != d.trial:
        rec = d.record(rule, finished=sum(s.number <= (d.trial or 0) for s in steps))
        study.set_user_attr(ATTR_EARLY_STOP, rec)
    return rec


def lift_stop(study: optuna.Study) -> bool:
    """Clear the study's recorded early stop (a run with the early stop off searches on);
    True if there was one."""
    if stopped_early(study) is None:
        return False
    study.set_user_attr(ATTR_EARLY_STOP, None)
    return True


class StopWhenFlat:
    """Optuna callback: end the search phase once the early stop says so; ``say`` (a
    progress function) hears it once."""

    def __init__(self, rule: EarlyStop, say: Callable[[str], None] | None = None) -> None:
        self.rule = rule
        self.say = say
        self.said = False

    def __call__(self, study: optuna.Study, _trial: FrozenTrial) -> None:
        rec = check_stop(study, self.rule)
        if rec is None:
            return
        if self.say is not None and not self.said:
            self.said = True
            self.say(describe(rec))
        study.stop()
