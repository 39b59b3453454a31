"""Allocation families: ways to spend one size (a mean keep ratio) across the layers.

Each family turns a mean keep ratio into a plan by one rule, so a study can bisect that
ratio at the SLOs as it bisects the uniform one (:mod:`frontier.search.family_search`)
and compare the two at equal footing. A family may need the layers' cost curves
(:mod:`frontier.search.costs`, a comparable criterion) or the layer probe
(:mod:`frontier.search.probe`); one whose needs are not met is not offered. The
sampler's own parametrisation, a keep ratio and a multiplier per group of layers moved
by level switches (:mod:`frontier.search.boundary`), is the family ``levels`` of every
trial the sampler proposes; it has no one-parameter rule here.

Every registered family passes the contract tests in
``tests/frontier/search/test_families.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.search.costs import LayerCosts, cheapest_plan

LEVELS = "levels"  # the family of the sampler's own proposals
DEPTH_SLOPE = 0.5  # a depth schedule's keep differs by this share of the mean, end to end


@dataclass(frozen=True)
class AllocationInfo:
    """What a family may read: the layers' full widths, the search bounds, the cost curves
    (None: the criterion's scores do not compare across layers) and the critical layers
    (those whose MLP alone, removed, breaks the SLOs; None: not probed)."""

    full: tuple[int, ...]
    lo: float
    hi: float
    multiple: int
    costs: LayerCosts | None = None
    critical: tuple[int, ...] | None = None
    removal: tuple[float, ...] | None = None  # the probe's whole-removal cost per layer

    def thinned(self) -> AllocationInfo | None:
        """The same with the cheapest critical layer (by the probe's whole-removal cost)
        no longer critical; None where fewer than two are critical or nothing ranks them."""
        if not self.critical or len(self.critical) < 2 or self.removal is None:
            return None
        removal = self.removal
        cheapest = min(self.critical, key=lambda i: (removal[i], i))
        return replace(self, critical=tuple(i for i in self.critical if i != cheapest))

    def clip(self, ratio: float) -> float:
        return min(max(ratio, self.lo), self.hi)

    def from_ratios(self, ratios: list[float]) -> Plan:
        clipped = [self.clip(r) for r in ratios]
        return Plan.from_ratios(clipped, self.full, multiple=self.multiple, floor=self.multiple)


PlanFn = Callable[[float, AllocationInfo], Plan]


@dataclass(frozen=True)
class Family:
    """``plan(keep, info)``: the family's plan keeping about ``keep`` of all neurons."""

    name: str
    plan: PlanFn
    description: str
    needs_costs: bool = False
    needs_probe: bool = False
    thins: bool = False  # also bisected protecting fewer layers (AllocationInfo.thinned)

    def available(self, info: AllocationInfo) -> str | None:
        """Why the family cannot be used with ``info`` (None: it can)."""
        if self.needs_costs and info.costs is None:
            return "needs costs that compare across layers (criterion obs-greedy)"
        if self.needs_probe and not info.critical:
            return "needs the layer probe to single out critical layers (none found)"
        return None


FAMILIES: dict[str, Family] = {}

LimitFn = Callable[[str, AllocationInfo], float | None]


def bisect_variants(family: Family, info: AllocationInfo, limit_of: LimitFn) -> None:
    """Bisect ``family`` with ``info`` through ``limit_of(label, info)`` (the MLP share
    the bisected limit keeps; None: no plan met the SLOs). A family that thins goes on
    protecting one layer fewer (labelled ``<family>-<n protected>``) for as long as that
    lowers the limit, or while no plan has met the SLOs yet."""
    best = limit_of(family.name, info)
    at = info.thinned() if family.thins else None
    while at is not None and at.critical is not None:
        kept = limit_of(f"{family.name}-{len(at.critical)}", at)
        if best is not None and (kept is None or kept >= best):
            return  # giving up one more protected layer did not pay
        best, at = kept, at.thinned()


def register_family(
    name: str,
    *,
    description: str,
    needs_costs: bool = False,
    needs_probe: bool = False,
    thins: bool = False,
) -> Callable[[PlanFn], PlanFn]:
    def wrap(fn: PlanFn) -> PlanFn:
        FAMILIES[name] = Family(name, fn, description, needs_costs, needs_probe, thins)
        return fn

    return wrap


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise FrontierError(
            f"unknown allocation family {name!r}; known: {', '.join(sorted(FAMILIES))}"
        ) from None


@register_family("uniform", description="every layer keeps the same share")
def uniform(keep: float, info: AllocationInfo) -> Plan:
    return info.from_ratios([keep] * len(info.full))


@register_family(
    "threshold",
    needs_costs=True,
    description="one price per kept neuron over the layers' cost curves (the global "
    "threshold): each layer as wide as its costs say, within the search bounds",
)
def threshold(keep: float, info: AllocationInfo) -> Plan:
    assert info.costs is not None
    return cheapest_plan(info.costs, keep, lo=info.lo, hi=info.hi, multiple=info.multiple)


@register_family(
    "removal",
    needs_costs=True,
    description="the global threshold with whole-MLP removal among the widths: a layer "
    "whose MLP costs less, whole, than the neurons it holds goes (width 0)",
)
def removal(keep: float, info: AllocationInfo) -> Plan:
    assert info.costs is not None
    return cheapest_plan(
        info.costs, keep, lo=info.lo, hi=info.hi, multiple=info.multiple, removable=True
    )


@register_family(
    "protect",
    needs_probe=True,
    thins=True,
    description="the critical layers (their MLP alone, removed, breaks the SLOs) kept "
    "whole, every other layer the same share; then the same protecting fewer, the "
    "cheapest critical layer first given up, while that pays",
)
def protect(keep: float, info: AllocationInfo) -> Plan:
    critical = set(info.critical or ())
    whole = sum(f for i, f in enumerate(info.full) if i in critical)
    rest = sum(info.full) - whole
    if rest == 0:
        return Plan.dense(info.full)
    ratio = (keep * sum(info.full) - whole) / rest
    return info.from_ratios([1.0 if i in critical else ratio for i in range(len(info.full))])


def _depth(keep: float, info: AllocationInfo, slope: float) -> Plan:
    n = len(info.full)
    pos = [i / (n - 1) - 0.5 if n > 1 else 0.0 for i in range(n)]  # mean 0
    return info.from_ratios([keep * (1.0 + slope * p) for p in pos])


@register_family(
    "depth-falling",
    description=f"keep falls linearly with depth, by {DEPTH_SLOPE:g} of the mean from the "
    "first layer to the last (SlimGPT's rising pruning ratio)",
)
def depth_falling(keep: float, info: AllocationInfo) -> Plan:
    return _depth(keep, info, -DEPTH_SLOPE)


@register_family(
    "depth-rising",
    description=f"keep rises linearly with depth, by {DEPTH_SLOPE:g} of the mean",
)
def depth_rising(keep: float, info: AllocationInfo) -> Plan:
    return _depth(keep, info, DEPTH_SLOPE)
