"""A sampler that spends the trials near the SLO boundary (EvoPress-style level switches).

Once a trial meets every SLO, most proposals are mutations of the plan at the edge:

* the *parent* is the best plan found at one grid step below the smallest feasible
  mean keep (the one closest to meeting the SLOs there, by summed violation), or, when
  nothing was tried there yet, the smallest feasible plan with its mean keep lowered by
  one step (which is proposed first as it is, then mutated); now and then
  (``same_level``) the smallest feasible plan itself, to widen its margin;
* the *mutation* moves budget between groups of layers and keeps the mean: one to
  three switches, each raising one group's ``shape`` by one or two shape steps and
  lowering another's by as much (EvoPress's level switch).

So the search climbs down the budget one step at a time, trying re-allocations at each
level until one meets the SLOs. The other proposals (``explore``, and every proposal
before any trial is feasible) come from the wrapped sampler (TPE by default), which keeps
covering the whole range for the Pareto set and the fits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from frontier.search.space import SHAPE_HI, SHAPE_LO, SHAPE_STEP, Space
from frontier.study.verdicts import feasible

PENDING = "frontier:boundary_proposal"  # trial system attribute: the plan's widths


def _violation(t: FrozenTrial) -> float:
    return sum(max(v, 0.0) for v in t.constraints.values())


class BoundarySampler(optuna.samplers.BaseSampler):
    """Level-switch mutations around the SLO boundary, over a wrapped sampler.

    Args:
        base: the sampler for exploration and for every parameter this one does not set.
        space: the study's search space (its parameter names and grid).
        seed: seeds the choice of parent and mutation.
        explore: share of proposals left to ``base`` once a feasible trial exists.
        same_level: share of mutations made at the smallest feasible plan's own budget.
    """

    def __init__(
        self,
        base: optuna.samplers.BaseSampler,
        space: Space,
        *,
        seed: int | None = None,
        explore: float = 0.25,
        same_level: float = 0.2,
    ) -> None:
        self.base = base
        self.space = space
        self.explore = explore
        self.same_level = same_level
        self._rng = random.Random(seed)
        self._proposals: dict[int, dict[str, float]] = {}

    # -- the sampler interface ----------------------------------------------------------
    def reseed_rng(self) -> None:
        self._rng = random.Random()
        self.base.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        proposal = self._propose(study) if self._rng.random() >= self.explore else None
        if proposal is None:
            return self.base.infer_relative_search_space(study, trial)
        widths = self._widths(proposal)
        # other workers see the plan this trial will measure before its parameters exist
        study._storage.set_trial_system_attr(trial._trial_id, PENDING, list(widths))
        if self._claimed_elsewhere(study, trial, widths):
            # two workers read the study before either wrote its plan and chose the same
            # one: every one that sees the other's after writing its own leaves it (at
            # least one of them sees it) and samples instead
            study._storage.set_trial_system_attr(trial._trial_id, PENDING, None)
            return self.base.infer_relative_search_space(study, trial)
        self._proposals[trial.number] = proposal
        return {}  # the proposal is handed out parameter by parameter

    def _claimed_elsewhere(
        self, study: optuna.Study, trial: FrozenTrial, widths: tuple[int, ...]
    ) -> bool:
        """Whether another running trial measures, or is about to, the plan ``widths``."""
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return any(t._trial_id != trial._trial_id and self._claim(t) == widths for t in running)

    def _claim(self, t: FrozenTrial) -> tuple[int, ...] | None:
        """The plan a running trial measures, or has been handed (None: not known yet)."""
        if all(n in t.params for n in self.space.names):
            return self._widths(t.params)
        pending = t.system_attrs.get(PENDING)
        return tuple(int(w) for w in pending) if isinstance(pending, list) else None

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if trial.number in self._proposals:
            return {}
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        proposal = self._proposals.get(trial.number)
        if proposal is not None and param_name in proposal:
            return proposal[param_name]
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._proposals.pop(trial.number, None)
        self.base.after_trial(study, trial, state, values)

    # -- proposals --------------------------------------------------------------------
    def _propose(self, study: optuna.Study) -> dict[str, float] | None:
        names = self.space.names
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        done = [
            t
            for t in study.get_trials(deepcopy=False, states=states)
            if t.constraints and all(n in t.params for n in names)
        ]
        ok = [t for t in done if feasible(t.constraints)]
        if not ok or self.space.lo == self.space.hi:
            return None
        best = min(ok, key=lambda t: (t.params["keep"], _violation(t), t.number))
        # plans measured, and plans other workers are measuring now (or are about to)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        seen = {self._widths(t.params) for t in done}
        seen |= {c for c in map(self._claim, running) if c is not None}
        step = self.space.step
        if self._rng.random() < self.same_level or best.params["keep"] - step < self.space.lo:
            parent = dict(best.params)
        else:
            target = best.params["keep"] - step
            level = [t for t in done if abs(t.params["keep"] - target) < step / 2]
            if not level:  # first the edge's own allocation, one level down
                child = self._switch({**best.params, "keep": target}, switches=0)
                if self._widths(child) not in seen:
                    return child
                parent = child
            else:
                parent = dict(min(level, key=lambda t: (_violation(t), t.number)).params)
        for _ in range(32):
            child = self._switch(parent)
            if self._widths(child) not in seen:
                return child
        return None

    def _widths(self, params: dict[str, Any]) -> tuple[int, ...]:
        """The plan ``params`` stand for (distinct parameters can round to one plan)."""
        shape = [float(params[n]) for n in self.space.names[1:]] or [1.0]
        return self.space.plan(self.space.ratios(float(params["keep"]), shape)).widths

    def _switch(self, parent: dict[str, float], switches: int | None = None) -> dict[str, float]:
        """Move shape between groups, keeping the mean shape (and so the budget); one to
        three switches unless ``switches`` says how many."""
        child = {n: float(parent[n]) for n in self.space.names}
        space = self.space
        child["keep"] = space._snap(child["keep"], space.lo, space.hi, space.step)
        shapes = self.space.names[1:]
        if len(shapes) < 2:
            return child
        if switches is None:
            switches = self._rng.choice((1, 1, 2, 3))
        for _ in range(switches):
            up, down = self._rng.sample(shapes, 2)
            delta = SHAPE_STEP * self._rng.choice((1, 1, 2))
            if child[up] + delta <= SHAPE_HI + 1e-9 and child[down] - delta >= SHAPE_LO - 1e-9:
                child[up] = round(child[up] + delta, 10)
                child[down] = round(child[down] - delta, 10)
        return child
