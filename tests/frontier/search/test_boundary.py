"""The boundary sampler: level switches around the smallest feasible plan."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.distributions import BaseDistribution, FloatDistribution

from frontier.search.boundary import BoundarySampler
from frontier.search.space import SHAPE_HI, SHAPE_LO, SHAPE_STEP, Space

SPACE = Space.build([1024] * 8, lo=0.2, hi=1.0, step=0.025, groups=4, multiple=8)
SLO = "ppl<2.0"


def _dists() -> dict[str, BaseDistribution]:
    out: dict[str, BaseDistribution] = {"keep": FloatDistribution(0.2, 1.0, step=0.025)}
    for name in SPACE.names[1:]:
        out[name] = FloatDistribution(SHAPE_LO, SHAPE_HI, step=SHAPE_STEP)
    return out


def _add(study: optuna.Study, keep: float, shape: list[float], violation: float) -> None:
    params: dict[str, Any] = {"keep": keep} | dict(zip(SPACE.names[1:], shape, strict=True))
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions=_dists(),
            values=[keep, 1.0 + violation],
            constraints={SLO: violation},
        )
    )


class Recording(optuna.samplers.RandomSampler):
    """A base sampler that records which parameters it was asked for."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.asked: list[str] = []

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        self.asked.append(name)
        return super().sample_independent(study, trial, name, dist)


def _study(sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)


def _ask(study: optuna.Study) -> dict[str, float]:
    trial = study.ask()
    SPACE.suggest(trial)
    params = dict(trial.params)
    trial.set_constraint(SLO, 1.0)  # infeasible: the edge does not move
    study.tell(trial, [params["keep"], 3.0])
    return params


def test_without_a_feasible_trial_every_parameter_comes_from_the_base_sampler() -> None:
    base = Recording()
    study = _study(BoundarySampler(base, SPACE, seed=0, explore=0.0))
    _add(study, 0.5, [1.0] * 4, violation=0.5)  # infeasible
    _ask(study)
    assert base.asked == SPACE.names


def test_mutations_step_one_level_below_the_smallest_feasible_plan_and_keep_its_budget() -> None:
    base = Recording()
    study = _study(BoundarySampler(base, SPACE, seed=1, explore=0.0, same_level=0.0))
    _add(study, 0.8, [1.0] * 4, violation=-0.5)
    _add(study, 0.6, [1.0] * 4, violation=-0.1)  # the smallest feasible plan
    _add(study, 0.4, [1.0] * 4, violation=2.0)
    first = _ask(study)  # the edge's own allocation, one level down
    assert first == {"keep": pytest.approx(0.575)} | {n: 1.0 for n in SPACE.names[1:]}
    seen = set()
    for _ in range(12):
        p = _ask(study)
        shape = [p[n] for n in SPACE.names[1:]]
        assert p["keep"] == pytest.approx(0.575)  # one grid step below 0.6
        assert sum(shape) / len(shape) == pytest.approx(1.0)  # budget moved, not changed
        assert shape != [1.0] * 4  # a switch happened
        assert all(SHAPE_LO - 1e-9 <= s <= SHAPE_HI + 1e-9 for s in shape)
        seen.add(tuple(shape))
    assert base.asked == []  # the mutations set every parameter
    assert len(seen) == 12  # no plan proposed twice (each was told, so it is known)


def test_the_parent_at_the_next_level_is_the_one_closest_to_feasible() -> None:
    study = _study(BoundarySampler(Recording(), SPACE, seed=2, explore=0.0, same_level=0.0))
    _add(study, 0.6, [1.0] * 4, violation=-0.1)
    near = [1.5, 0.5, 1.0, 1.0]
    far = [0.5, 1.5, 1.0, 1.0]
    _add(study, 0.575, far, violation=5.0)
    _add(study, 0.575, near, violation=0.1)
    for _ in range(8):
        p = _ask(study)
        shape = [p[n] for n in SPACE.names[1:]]
        to_near = sum(abs(a - b) for a, b in zip(shape, near, strict=True))
        to_far = sum(abs(a - b) for a, b in zip(shape, far, strict=True))
        assert p["keep"] == pytest.approx(0.575)
        assert to_near <= 3 * 2 * 2 * SHAPE_STEP + 1e-9 < to_far  # at most 3 switches of 2 steps


def test_a_feasible_plan_one_level_down_becomes_the_new_edge() -> None:
    study = _study(BoundarySampler(Recording(), SPACE, seed=3, explore=0.0, same_level=0.0))
    _add(study, 0.6, [1.0] * 4, violation=-0.1)
    _add(study, 0.575, [1.1, 0.9, 1.0, 1.0], violation=-0.01)
    assert _ask(study)["keep"] == pytest.approx(0.55)


def test_explore_hands_proposals_to_the_base_sampler() -> None:
    base = Recording()
    study = _study(BoundarySampler(base, SPACE, seed=0, explore=1.0))
    _add(study, 0.6, [1.0] * 4, violation=-0.1)
    _ask(study)
    assert base.asked == SPACE.names


def _plan_of(params: dict[str, float]) -> tuple[int, ...]:
    shape = [params[n] for n in SPACE.names[1:]]
    return SPACE.plan(SPACE.ratios(params["keep"], shape)).widths


def test_a_plan_another_worker_is_measuring_is_not_proposed_again() -> None:
    # two workers at once: the first trial is still running when the second is proposed
    study = _study(BoundarySampler(Recording(), SPACE, seed=4, explore=0.0, same_level=0.0))
    _add(study, 0.6, [1.0] * 4, violation=-0.1)
    running = study.ask()
    SPACE.suggest(running)  # its parameters are set; it has not finished
    assert _plan_of(_ask(study)) != _plan_of(dict(running.params))


def test_a_plan_another_worker_has_only_been_handed_is_not_proposed_again() -> None:
    # the first trial has its proposal but not all its parameters yet
    from frontier.search.boundary import PENDING

    study = _study(BoundarySampler(Recording(), SPACE, seed=5, explore=0.0, same_level=0.0))
    _add(study, 0.6, [1.0] * 4, violation=-0.1)
    pending = study.ask()
    pending.suggest_float("keep", 0.2, 1.0, step=0.025)  # the first of its parameters
    handed = tuple(study.trials[pending.number].system_attrs[PENDING])
    assert handed == _plan_of({"keep": 0.575} | {n: 1.0 for n in SPACE.names[1:]})
    assert _plan_of(_ask(study)) != handed


def test_two_workers_that_chose_one_plan_at_once_do_not_both_measure_it() -> None:
    # the second worker read the study before the first wrote its plan down, and chose the
    # same one; writing its own, it sees the first's and samples instead (the race CI hit:
    # "plans proposed twice" with three workers on a loaded machine)
    from frontier.search.boundary import PENDING

    first = BoundarySampler(Recording(), SPACE, seed=5, explore=0.0, same_level=0.0)
    study = _study(first)
    _add(study, 0.6, [1.0] * 4, violation=-0.1)
    a = study.ask()
    a.suggest_float("keep", 0.2, 1.0, step=0.025)
    handed = list(study.trials[a.number].system_attrs[PENDING])
    base = Recording()
    second = BoundarySampler(base, SPACE, seed=6, explore=0.0, same_level=0.0)
    proposal = dict(first._proposals[a.number])
    second._propose = lambda _study: dict(proposal)  # type: ignore[method-assign]
    other = optuna.load_study(study_name=study.study_name, storage=study._storage, sampler=second)
    b = _ask(other)
    assert list(_plan_of(b)) != handed
    assert "keep" in base.asked  # its plan came from the base sampler
    assert study.trials[a.number].system_attrs[PENDING] == handed  # the first keeps its plan
    assert study.trials[-1].system_attrs.get(PENDING) is None
