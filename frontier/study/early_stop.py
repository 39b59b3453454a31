"""When searching stops paying: the early-stop rule, as a pure function of a study's trials.

A study opens with the bisection of the uniform keep ratio and the warm starts; then the
sampler searches. The search phase ends early once :attr:`EarlyStop.patience` searched
trials in a row found no feasible plan (one that meets every SLO at search time) that
removes more of the MLP than the best feasible plan before it by more than
:attr:`EarlyStop.noise` (a fraction: 0.01 is one point of MLP removed).

- Trials count in the order of their numbers, finished ones only (measured, screened, or
  failed by evaluation), so every process that reads the same stored trials (a parallel
  worker, a resumed run, the replay of a committed study) reaches the same decision.
- The bisection and the warm starts set the best feasible plan and never count.
- An infeasible, screened or failed trial counts as not improving; so does a feasible
  one that beats the best by no more than the noise (it still becomes the best).
- Until some trial is feasible nothing counts: there is no plan to stop at yet.

The defaults come from replaying the rule on the committed studies
(``benchmarks/early_stop.py``, ``benchmarks/results/early-stop-2026-12-06.log``).
Torch-free and Optuna-free: :mod:`frontier.search.early_stop` applies it to a study.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["NOISE", "PATIENCE", "Decision", "EarlyStop", "Step", "decide", "describe"]

PATIENCE = 15
NOISE = 0.01  # of the MLP's parameters: one point of MLP removed


@dataclass(frozen=True)
class EarlyStop:
    """The rule's two numbers: trials in a row, and the smallest gain that counts."""

    patience: int = PATIENCE
    noise: float = NOISE

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")
        if not 0 <= self.noise < 1:
            raise ValueError(f"noise must be a fraction in [0, 1), got {self.noise}")

    def to_dict(self) -> dict[str, Any]:
        return {"patience": self.patience, "noise_mlp_removed": self.noise}


@dataclass(frozen=True)
class Step:
    """One finished trial as the rule reads it. ``warm``: a bisection step or warm start;
    ``mlp_removed``: its search-time size (None where it has none, e.g. failed)."""

    number: int
    warm: bool
    feasible: bool
    mlp_removed: float | None


@dataclass(frozen=True)
class Decision:
    """Where the rule stands after the trials read.

    ``stop``: the last ``streak`` searched trials (at least ``patience``) did not improve;
    ``trial`` is where that run of trials reached the patience (None while it has not).
    ``best``/``best_trial``: the best feasible plan so far (MLP fraction removed).
    """

    stop: bool
    trial: int | None
    streak: int
    best: float | None
    best_trial: int | None
    searched: int  # searched (not warm) finished trials read

    def record(self, rule: EarlyStop, finished: int) -> dict[str, Any]:
        """What a study stores under ``frontier:early_stop`` when it stops early."""
        return {
            "trial": self.trial,
            **rule.to_dict(),
            "best_trial": self.best_trial,
            "best_mlp_removed": self.best,
            "searched_trials": self.searched,
            "finished_trials": finished,
        }


def decide(steps: Iterable[Step], rule: EarlyStop) -> Decision:
    """The rule on ``steps``, read in trial order: does the search stop after them?

    It reads every step, so trials measured past a stop (by ``--no-early-stop``, or a
    parallel worker's trial in flight) count too: one that improves lifts the stop.
    The search as it runs asks after each finished trial, so it stops at the first trial
    where the count reaches the patience (the replay asks after each trial likewise).
    """
    best: float | None = None
    best_trial = reached = None
    streak = searched = 0
    for s in sorted(steps, key=lambda s: s.number):
        searched += not s.warm
        size = s.mlp_removed if s.feasible else None
        if size is not None and (best is None or size > best + rule.noise):
            best, best_trial, streak, reached = size, s.number, 0, None
            continue
        if size is not None and best is not None and size > best:
            best, best_trial = size, s.number  # within the noise: the best, not a gain
        if not s.warm and best is not None:
            streak += 1
            if streak == rule.patience:
                reached = s.number
    stop = streak >= rule.patience
    return Decision(stop, reached if stop else None, streak, best, best_trial, searched)


def describe(record: dict[str, Any]) -> str:
    """One line for a stored ``frontier:early_stop`` record."""
    best = record.get("best_mlp_removed")
    than = (
        f"trial {record.get('best_trial')}'s {100 * best:.1f}%"
        if isinstance(best, (int, float))
        else "the best one"
    )
    noise = 100 * float(record.get("noise_mlp_removed") or 0.0)
    return (
        f"search stopped early after trial {record.get('trial')}: "
        f"{record.get('patience')} sampled trials in a row found no plan meeting the SLOs "
        f"that removes more than {noise:g} point(s) of MLP more than {than}"
    )
