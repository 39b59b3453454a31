"""A study's allocation families, each bisected at the SLOs after the uniform plan.

After the uniform keep ratio is bisected (:func:`frontier.search.uniform.bisect_in_study`),
each family the spec names (:mod:`frontier.search.families`) has its mean keep bisected
the same way, with trials of the study, in a bracket from the uniform limit down by
:data:`SPAN`: a family that does not meet the SLOs at the uniform plan's size has nothing
to offer there and costs one trial. Its trials carry the family (``frontier:family``)
and its limit is recorded on the study (``frontier:family_limits``). The layer probe is
measured first where a family needs it, or where it calibrates the cost curves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from frontier.search.costs import LayerCosts, layer_costs
from frontier.search.families import AllocationInfo, Family, bisect_variants, get_family
from frontier.search.probe import LayerProbe, probe_layers
from frontier.study.schema import ATTR_FAMILIES, ATTR_PROBE

SPAN = 0.1  # a family's bracket: from the uniform limit down by this much mean keep
CALIBRATE = True  # the cost curves on the probe's scale where the study has a probe

Progress = Callable[[str], None]


def allocation_info(ctx: Any, probe: LayerProbe | None) -> AllocationInfo:
    """What the families read in a study: its bounds, its criterion's cost curves (on the
    probe's scale where it has one and :data:`CALIBRATE`) and its critical layers."""
    costs: LayerCosts | None = layer_costs(ctx.scores)
    if costs is not None and probe is not None and CALIBRATE:
        costs = costs.calibrated(probe.removal_costs(), f"probe-calibrated ({probe.metric})")
    space = ctx.space
    return AllocationInfo(
        tuple(space.full),
        space.lo,
        space.hi,
        space.multiple,
        costs,
        None if probe is None else probe.critical,
        None if probe is None else probe.removal_costs(),
    )


def study_probe(ctx: Any, study: Any, *, progress: Progress | None = None) -> LayerProbe:
    """The study's layer probe, measured once (kept on the study)."""
    stored = study.user_attrs.get(ATTR_PROBE)
    if isinstance(stored, dict):
        return LayerProbe.from_dict(stored)
    probe = probe_layers(ctx, progress=progress)
    study.set_user_attr(ATTR_PROBE, probe.to_dict())
    return probe


def warm_costs(ctx: Any, study: Any, progress: Progress | None = None) -> LayerCosts | None:
    """The cost curves the global-threshold warm starts read (on the probe's scale where
    the study has one); None, and ``progress`` hears why, where the criterion's scores do
    not compare across layers."""
    stored = study.user_attrs.get(ATTR_PROBE)
    probe = LayerProbe.from_dict(stored) if isinstance(stored, dict) else None
    costs = allocation_info(ctx, probe).costs
    if costs is None and progress is not None:
        progress(
            f"no global-threshold warm starts: {ctx.spec.criterion}'s scores do not compare "
            "across layers"
        )
    return costs


def bisect_families(
    ctx: Any,
    study: Any,
    limit_keep: float,
    *,
    budget: int | None = None,
    callbacks: Sequence[Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Bisect the mean keep of each family ``ctx.spec.families`` names in
    ``[limit_keep - SPAN, limit_keep]``; the
    records by family (also on the study). A family whose needs are not met is recorded
    with the reason and not tried. A family that thins (``protect``) is bisected again
    protecting one layer fewer, the cheapest critical one by the probe given up first
    (recorded as ``<family>-<n protected>``), for as long as that lowers the limit, or
    while no plan has met the SLOs yet.
    Stops, leaving the rest untried, where a step would overrun the trial ``budget``."""
    from frontier.search.uniform import BudgetSpent, bisect_in_study

    say = progress or (lambda _m: None)
    limits: dict[str, Any] = dict(study.user_attrs.get(ATTR_FAMILIES) or {})
    families = [get_family(n) for n in ctx.spec.families]
    probe = None
    if any(f.needs_probe or (f.needs_costs and CALIBRATE) for f in families):
        if ATTR_PROBE not in study.user_attrs:
            say("probing each layer without its MLP (one forward per layer)")
        probe = study_probe(ctx, study, progress=say)
    info = allocation_info(ctx, probe)
    bracket = (max(limit_keep - SPAN, ctx.space.lo), limit_keep)

    def bisect(label: str, family: Family, at: AllocationInfo) -> dict[str, Any]:
        """One family's record: from the study where a resumed run has it, else bisected."""
        if label not in limits:
            say(f"bisecting the mean keep of allocation family {label}")
            rec = bisect_in_study(
                ctx,
                study,
                budget=budget,
                callbacks=callbacks,
                family=label,
                plan_at=lambda keep: family.plan(keep, at),
                bracket=bracket,
            )
            if rec is not None and family.needs_probe and at.critical is not None:
                rec["protected"] = list(at.critical)  # the layers its plans keep whole
            limits[label] = rec
            study.set_user_attr(ATTR_FAMILIES, limits)
        return limits[label]

    for family in families:
        why = family.available(info)
        if why is not None:
            if family.name not in limits:
                say(f"allocation family {family.name}: not tried, {why}")
                limits[family.name] = {"keep": None, "skipped": why}
                study.set_user_attr(ATTR_FAMILIES, limits)
            continue
        try:

            def limit_of(label: str, at: AllocationInfo, f: Family = family) -> float | None:
                return _kept(bisect(label, f, at))

            bisect_variants(family, info, limit_of)
        except BudgetSpent:
            say(f"allocation family {family.name}: the trial budget ran out")
            break
    return limits


def _kept(rec: dict[str, Any] | None) -> float | None:
    """The MLP share a family's bisected limit keeps (None: no plan met the SLOs)."""
    if rec is None or rec.get("keep") is None:
        return None
    return float(rec["mlp_kept"])
