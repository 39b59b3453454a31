"""The search space: one keep ratio per group of contiguous layers, and warm-start plans."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from frontier.pruning.plan import Plan
from frontier.search.costs import LayerCosts, cheapest_plan

SHAPE_LO, SHAPE_HI, SHAPE_STEP = 0.5, 1.5, 0.05


@dataclass(frozen=True)
class Space:
    """A keep budget and a relative shape per group of contiguous layers.

    The sampler proposes ``keep`` (the mean keep ratio, on a grid of ``step`` in
    [lo, hi]) and one ``shape_g`` multiplier in [0.5, 1.5] per group; group g keeps
    ``keep * shape_g / mean(shape)``, clipped to [lo, hi]. Size and allocation are
    separate parameters, so the sampler can learn how much to cut and where to cut it
    independently; with one free ratio per group the total size is an average of many
    draws and rarely reaches the extremes.
    """

    full: tuple[int, ...]
    lo: float
    hi: float
    step: float
    n_groups: int
    multiple: int = 8

    @classmethod
    def build(
        cls,
        full: Sequence[int],
        *,
        lo: float,
        hi: float,
        step: float,
        groups: int | None,
        multiple: int,
    ) -> Space:
        n = len(full)
        return cls(tuple(full), lo, hi, step, min(groups or n, n), multiple)

    @property
    def names(self) -> list[str]:
        return ["keep"] + [f"shape_{g:02d}" for g in range(self.n_groups)]

    def group_of(self, layer: int) -> int:
        return layer * self.n_groups // len(self.full)

    def ratios(self, keep: float, shape: Sequence[float]) -> list[float]:
        mean = sum(shape) / len(shape)
        return [min(max(keep * s / mean, self.lo), self.hi) for s in shape]

    def plan(self, group_ratios: Sequence[float]) -> Plan:
        per_layer = [group_ratios[self.group_of(i)] for i in range(len(self.full))]
        return Plan.from_ratios(per_layer, self.full, multiple=self.multiple, floor=self.multiple)

    def suggest(self, trial: Any) -> Plan:
        if self.lo == self.hi:
            return self.plan([self.lo] * self.n_groups)
        keep = trial.suggest_float("keep", self.lo, self.hi, step=self.step)
        if self.n_groups == 1:
            return self.plan([keep])
        shape = [
            trial.suggest_float(n, SHAPE_LO, SHAPE_HI, step=SHAPE_STEP) for n in self.names[1:]
        ]
        return self.plan(self.ratios(keep, shape))

    @staticmethod
    def _snap(x: float, lo: float, hi: float, step: float) -> float:
        k = round((min(max(x, lo), hi) - lo) / step)
        k = min(k, math.floor((hi - lo) / step + 1e-9))
        return round(lo + k * step, 10)

    def params_for(self, plan: Plan) -> dict[str, float]:
        """Grid parameters closest to ``plan`` (what the sampler sees for a warm start)."""
        ratios = plan.keep_ratios()
        sums = [0.0] * self.n_groups
        counts = [0] * self.n_groups
        for i, r in enumerate(ratios):
            sums[self.group_of(i)] += r
            counts[self.group_of(i)] += 1
        group = [s / c for s, c in zip(sums, counts, strict=True)]
        keep = sum(group) / len(group)
        out = {"keep": self._snap(keep, self.lo, self.hi, self.step)}
        if self.n_groups > 1:
            for name, r in zip(self.names[1:], group, strict=True):
                out[name] = self._snap(r / keep, SHAPE_LO, SHAPE_HI, SHAPE_STEP)
        return out


def uniform_ladder(space: Space, keeps: Sequence[float]) -> list[tuple[str, Plan]]:
    out = []
    for k in keeps:
        if space.lo <= k <= space.hi:
            out.append(
                (
                    f"uniform-{k:.2f}",
                    Plan.uniform(k, space.full, multiple=space.multiple, floor=space.multiple),
                )
            )
    return out


def global_threshold_plan(costs: LayerCosts, space: Space, kept_fraction: float) -> Plan:
    """The global threshold: one price per kept neuron over the layers' cost curves
    (:func:`frontier.search.costs.cheapest_plan`), widths within the search bounds."""
    return cheapest_plan(costs, kept_fraction, lo=space.lo, hi=space.hi, multiple=space.multiple)


def warm_start_plans(
    space: Space, costs: LayerCosts | None, limit: float | None = None
) -> list[tuple[str, Plan]]:
    """Warm starts: without a bisected uniform ``limit`` (the smallest uniform keep ratio
    that met the SLOs), uniform plans on a ladder of keep ratios and global-threshold
    plans at several sizes; with one (whose bisection steps already cover the range
    uniformly), global-threshold plans at and just below it, and two larger ones. The
    global-threshold plans need ``costs`` that compare across layers (None: none)."""
    if limit is None:
        plans = uniform_ladder(space, (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5))
        targets: tuple[float, ...] = (0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6)
    else:
        plans = []
        targets = (0.9, (1 + limit) / 2, limit, limit - space.step)
    if costs is not None:
        for target in targets:
            if 0 < target <= 1:
                plans.append((f"global-{target:.2f}", global_threshold_plan(costs, space, target)))
    seen: set[tuple[int, ...]] = set()
    unique = []
    for label, plan in plans:  # small models round several targets to one plan
        if plan.widths not in seen:
            seen.add(plan.widths)
            unique.append((label, plan))
    return unique
