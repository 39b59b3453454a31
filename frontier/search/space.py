"""The search space: one keep ratio per group of contiguous layers, and warm-start plans."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from frontier.plan import Plan


@dataclass(frozen=True)
class Space:
    """Keep ratios in [lo, hi] on a grid of ``step``, one per group of contiguous layers."""

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
        return [f"keep_{g:02d}" for g in range(self.n_groups)]

    def group_of(self, layer: int) -> int:
        return layer * self.n_groups // len(self.full)

    def plan(self, ratios: Sequence[float]) -> Plan:
        per_layer = [ratios[self.group_of(i)] for i in range(len(self.full))]
        return Plan.from_ratios(per_layer, self.full, multiple=self.multiple, floor=self.multiple)

    def suggest(self, trial: Any) -> Plan:
        if self.lo == self.hi:
            return self.plan([self.lo] * self.n_groups)
        ratios = [trial.suggest_float(n, self.lo, self.hi, step=self.step) for n in self.names]
        return self.plan(ratios)

    def snap(self, ratio: float) -> float:
        """Nearest grid value (what the sampler would see for a warm-start plan)."""
        k = round((min(max(ratio, self.lo), self.hi) - self.lo) / self.step)
        k = min(k, math.floor((self.hi - self.lo) / self.step + 1e-9))
        return round(self.lo + k * self.step, 10)

    def params_for(self, plan: Plan) -> dict[str, float]:
        """Grid parameters closest to ``plan`` (group means of its keep ratios)."""
        ratios = plan.keep_ratios()
        sums = [0.0] * self.n_groups
        counts = [0] * self.n_groups
        for i, r in enumerate(ratios):
            sums[self.group_of(i)] += r
            counts[self.group_of(i)] += 1
        return {n: self.snap(s / c) for n, s, c in zip(self.names, sums, counts, strict=True)}


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


def global_threshold_plan(
    scores: Sequence[torch.Tensor], space: Space, kept_fraction: float
) -> Plan:
    """FLAP-style allocation: one threshold over scores normalised per layer.

    Scores are divided by their layer's mean, pooled across layers, and the top
    ``kept_fraction`` of all neurons are kept; each layer's width follows from how many
    of its neurons clear the threshold, clipped to the search bounds.
    """
    normed = [s.double() / s.double().mean().clamp_min(1e-30) for s in scores]
    pooled = torch.cat(normed)
    n_keep = max(1, round(kept_fraction * pooled.numel()))
    threshold = pooled.topk(n_keep).values[-1]
    ratios = []
    for s, f in zip(normed, space.full, strict=True):
        ratio = float((s >= threshold).sum()) / f
        ratios.append(min(max(ratio, space.lo), space.hi))
    return Plan.from_ratios(ratios, space.full, multiple=space.multiple, floor=space.multiple)


def warm_start_plans(space: Space, scores: Sequence[torch.Tensor] | None) -> list[tuple[str, Plan]]:
    """Uniform plans on a ladder of keep ratios, and global-threshold plans at several sizes."""
    plans = uniform_ladder(space, (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5))
    if scores is not None:
        for target in (0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6):
            plans.append((f"global-{target:.2f}", global_threshold_plan(scores, space, target)))
    seen: set[tuple[int, ...]] = set()
    unique = []
    for label, plan in plans:  # small models round several targets to one plan
        if plan.widths not in seen:
            seen.add(plan.widths)
            unique.append((label, plan))
    return unique
