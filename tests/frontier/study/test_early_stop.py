"""The early-stop rule on made-up trial lists: what counts, what resets the count."""

from __future__ import annotations

import pytest

from frontier.study.early_stop import PATIENCE, EarlyStop, Step, decide, describe

RULE = EarlyStop(patience=4, noise=0.01)


def warm(number: int, removed: float | None = 0.40, feasible: bool = True) -> Step:
    """A bisection step or warm start."""
    return Step(number, warm=True, feasible=feasible, mlp_removed=removed)


def searched(number: int, removed: float | None = 0.30, feasible: bool = True) -> Step:
    return Step(number, warm=False, feasible=feasible, mlp_removed=removed)


def opening(n: int = 3) -> list[Step]:
    """The bisection and warm starts: the best feasible plan removes 40%."""
    return [warm(0, 0.80, feasible=False), warm(1, 0.40), *(warm(i, 0.20) for i in range(2, n))]


def first_stop(steps: list[Step], rule: EarlyStop = RULE) -> int | None:
    """The trial after which a running search stops: the rule asked after every trial."""
    for k in range(1, len(steps) + 1):
        d = decide(steps[:k], rule)
        if d.stop:
            return d.trial
    return None


def test_stops_after_exactly_patience_trials_that_do_not_improve() -> None:
    steps = opening() + [searched(n) for n in range(3, 3 + RULE.patience)]
    before = decide(steps[:-1], RULE)
    assert not before.stop and before.streak == RULE.patience - 1 and before.trial is None
    d = decide(steps, RULE)
    assert d.stop and d.trial == steps[-1].number and d.streak == RULE.patience
    assert (d.best, d.best_trial) == (0.40, 1)  # the bisection's best is the mark
    assert d.searched == RULE.patience
    assert first_stop(steps) == 6


def test_an_improvement_beyond_the_noise_restarts_the_count() -> None:
    steps = [*opening(), searched(3), searched(4), searched(5), searched(6, 0.42)]
    steps += [searched(n) for n in range(7, 10)]
    d = decide(steps, RULE)
    assert not d.stop and d.streak == 3 and (d.best, d.best_trial) == (0.42, 6)
    assert first_stop([*steps, searched(10)]) == 10


def test_an_improvement_within_the_noise_does_not_restart_the_count() -> None:
    steps = [*opening(), searched(3), searched(4), searched(5, 0.405), searched(6)]
    d = decide(steps, RULE)
    assert d.stop and d.trial == 6
    assert (d.best, d.best_trial) == (0.405, 5)  # it is the best, but not a gain
    # the noise is measured from the best so far, which the small gain raised
    just_over = [*steps[:5], searched(5, 0.405), searched(6, 0.4151)]
    assert not decide(just_over, RULE).stop


def test_infeasible_screened_and_failed_trials_count_as_not_improving() -> None:
    steps = [
        *opening(),
        searched(3, 0.60, feasible=False),  # larger, but misses an SLO
        searched(4, 0.55, feasible=False),  # screened: never feasible
        searched(5, None, feasible=False),  # failed (NaN): no size
        searched(6, 0.70, feasible=False),
    ]
    assert first_stop(steps) == 6


def test_the_bisection_and_warm_starts_do_not_count() -> None:
    steps = [warm(n, 0.10 + n / 100) for n in range(12)]  # many, each a small gain
    d = decide(steps, RULE)
    assert not d.stop and d.streak == 0 and d.searched == 0
    assert d.best == pytest.approx(0.21)
    # a warm start that finishes after sampled trials (a retry) counts no more than before
    late = [*opening(), searched(3), searched(4), searched(5), warm(6, 0.39)]
    assert decide(late, RULE).streak == 3


def test_no_feasible_trial_no_stop() -> None:
    steps = [warm(0, 0.8, feasible=False)] + [
        searched(n, 0.5, feasible=False) for n in range(1, 20)
    ]
    d = decide(steps, RULE)
    assert not d.stop and d.best is None and d.streak == 0
    # the first feasible trial is the mark; the count starts after it
    assert first_stop([*steps, *(searched(n, 0.1) for n in range(20, 25))]) == 24


def test_trials_count_in_number_order_whatever_order_they_finished_in() -> None:
    steps = [*opening(), searched(3), searched(4), searched(5), searched(6)]
    shuffled = [steps[5], steps[0], steps[6], steps[2], steps[4], steps[1], steps[3]]
    assert decide(shuffled, RULE) == decide(steps, RULE)


def test_trials_past_the_stop_that_improve_lift_it() -> None:
    stopped = [*opening(), *(searched(n) for n in range(3, 7))]
    assert decide(stopped, RULE).stop
    # --no-early-stop ran on, or a parallel worker's trial in flight finished after
    assert not decide([*stopped, searched(7, 0.5)], RULE).stop
    # more trials that do not improve keep the stop where it was reached
    again = decide([*stopped, searched(7), searched(8)], RULE)
    assert again.stop and again.trial == 6 and again.streak == 6


def test_the_rule_and_its_record() -> None:
    assert EarlyStop().patience == PATIENCE
    with pytest.raises(ValueError, match="patience"):
        EarlyStop(patience=0)
    with pytest.raises(ValueError, match="noise"):
        EarlyStop(noise=1.5)
    d = decide(opening() + [searched(n) for n in range(3, 7)], RULE)
    rec = d.record(RULE, finished=7)
    assert rec == {
        "trial": 6,
        "patience": 4,
        "noise_mlp_removed": 0.01,
        "best_trial": 1,
        "best_mlp_removed": 0.40,
        "searched_trials": 4,
        "finished_trials": 7,
    }
    assert describe(rec) == (
        "search stopped early after trial 6: 4 sampled trials in a row found no plan "
        "meeting the SLOs that removes more than 1 point(s) of MLP more than trial 1's 40.0%"
    )
