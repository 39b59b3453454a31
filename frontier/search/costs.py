"""What each layer's width costs, on one scale across layers, and the cheapest plan of a size.

A comparable criterion (:attr:`frontier.importance.Criterion.comparable`; ``obs-greedy``)
scores every neuron with the share of its layer's output energy lost by the time it goes,
so layer ``i`` kept at ``k`` neurons costs the score of its ``(n - k)``-th neuron removed:
a curve per layer, 0 at the full width, rising as the layer narrows. Shares of output
energy compare across layers only so far as every layer's output matters as much as
every other's; one end-to-end measurement per layer, the search signal with that layer's
MLP removed (:mod:`frontier.search.probe`), puts them on the scale of the signal itself:
:meth:`LayerCosts.calibrated` rescales each curve so that its whole-removal end costs
what the probe measured (the log of the perplexity ratio), and a partial width what its
share of that layer's error would, pro rata.

:func:`cheapest_plan` spends a size on these curves: one Lagrange multiplier on the kept
neurons, each layer at the width that minimises its cost plus the multiplier times its
width (whole-MLP removal among the widths when allowed), the multiplier bisected to the
size. It is the global threshold: one price per neuron in every layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from frontier.errors import FrontierError
from frontier.importance import Scores, get_criterion
from frontier.pruning.plan import Plan, round_width


@dataclass(frozen=True)
class LayerCosts:
    """``curves[i][k]``: the cost of layer ``i`` keeping ``k`` of its neurons (float64,
    ``k = 0 .. full``, non-increasing in ``k``, 0 at the full width), one scale in every
    layer; ``scale`` names it."""

    curves: tuple[torch.Tensor, ...]
    scale: str

    def __post_init__(self) -> None:
        for i, c in enumerate(self.curves):
            if c.ndim != 1 or c.numel() < 2 or not bool(torch.isfinite(c).all()):
                raise FrontierError(f"layer {i}: a cost curve needs finite costs for 0..full")

    @classmethod
    def from_scores(cls, per_layer: Sequence[torch.Tensor], scale: str) -> LayerCosts:
        """Curves from scores that are each neuron's cumulative cost at its removal (higher
        = removed later = costlier), as a comparable criterion gives them."""
        curves = []
        for s in per_layer:
            spent = torch.sort(s.double().cpu()).values  # spent[j]: after j + 1 removals
            curve = torch.zeros(s.numel() + 1, dtype=torch.float64)
            curve[: s.numel()] = spent.flip(0)  # keeping k: n - k removed
            curves.append(torch.cummax(curve.flip(0), 0).values.flip(0))
        return cls(tuple(curves), scale)

    @property
    def full(self) -> tuple[int, ...]:
        return tuple(c.numel() - 1 for c in self.curves)

    def removal(self) -> tuple[float, ...]:
        """What removing each layer's whole MLP costs."""
        return tuple(float(c[0]) for c in self.curves)

    def calibrated(self, removal_cost: Sequence[float], scale: str) -> LayerCosts:
        """Each curve rescaled so that whole removal costs ``removal_cost[i]``."""
        if len(removal_cost) != len(self.curves):
            raise FrontierError(f"{len(removal_cost)} removal costs for {len(self.curves)} layers")
        out = []
        for c, r in zip(self.curves, removal_cost, strict=True):
            end = float(c[0])
            out.append(c * (max(float(r), 0.0) / end) if end > 0 else c.clone())
        return LayerCosts(tuple(out), scale)

    def cost(self, plan: Plan) -> float:
        """The plan's summed cost."""
        return sum(float(c[w]) for c, w in zip(self.curves, plan.widths, strict=True))


def layer_costs(scores: Scores) -> LayerCosts | None:
    """The curves a criterion's scores give, or None where they do not compare across
    layers (every criterion but a ``comparable`` one: ranks, magnitudes, activations)."""
    try:
        comparable = get_criterion(scores.criterion).comparable
    except FrontierError:
        return None
    if not comparable:
        return None
    return LayerCosts.from_scores(scores.per_layer, "share of the layer's output energy")


def widths_allowed(full: int, *, lo: float, hi: float, multiple: int, removable: bool) -> list[int]:
    """The widths a layer may take: what keep ratios in [lo, hi] round to, and 0 (the
    whole MLP removed) when ``removable``."""
    low = round_width(lo, full, multiple=multiple, floor=multiple)
    high = round_width(hi, full, multiple=multiple, floor=multiple)
    out = [w for w in range(multiple, full, multiple) if low <= w <= high]
    if low <= full <= high:
        out.append(full)
    out = sorted({low, high, *out})
    return ([0] if removable and 0 not in out else []) + out


def cheapest_plan(
    costs: LayerCosts,
    kept_fraction: float,
    *,
    lo: float,
    hi: float,
    multiple: int,
    removable: bool = False,
    fixed: dict[int, int] | None = None,
) -> Plan:
    """The plan that keeps about ``kept_fraction`` of all neurons (at most that, where the
    widths allow) at the least summed cost: one price per kept neuron, each layer at its
    cheapest width for it, the price bisected. ``fixed``: widths some layers keep."""
    full = costs.full
    fixed = fixed or {}
    allowed = [
        torch.tensor(
            [fixed[i]]
            if i in fixed
            else widths_allowed(f, lo=lo, hi=hi, multiple=multiple, removable=removable),
            dtype=torch.long,
        )
        for i, f in enumerate(full)
    ]
    values = [c[a] for c, a in zip(costs.curves, allowed, strict=True)]
    target = kept_fraction * sum(full)

    def at(price: float) -> tuple[int, ...]:
        # ties go to the wider width: a free neuron is kept
        return tuple(
            int(a[torch.argmin(v + price * a.double() - 1e-12 * a.double())])
            for a, v in zip(allowed, values, strict=True)
        )

    best = at(0.0)
    if sum(best) <= target:
        return Plan(best, full, multiple, multiple)
    lo_p, hi_p = 1e-12, 1.0
    while sum(at(hi_p)) > target and hi_p < 1e30:
        lo_p, hi_p = hi_p, hi_p * 16.0
    best = at(hi_p)
    for _ in range(200):
        mid = math.sqrt(lo_p * hi_p)
        widths = at(mid)
        if sum(widths) > target:
            lo_p = mid
        else:
            hi_p, best = mid, widths
        if hi_p - lo_p <= 1e-9 * hi_p:
            break
    return Plan(best, full, multiple, multiple)
