"""What a study records about how it measures (``frontier:protocol``): model, device,
operator, texts, SLOs, the final re-measurement's rule, search space and versions, so a
reader can reproduce its numbers."""

from __future__ import annotations

from typing import Any

import optuna

from frontier.importance import get_criterion
from frontier.models.device import device_name
from frontier.search.context import SearchContext
from frontier.study.early_stop import EarlyStop

__all__ = ["protocol"]


def protocol(ctx: SearchContext) -> dict[str, Any]:
    import lm_eval
    import torch
    import transformers

    spec = ctx.spec
    out: dict[str, Any] = {
        "model": ctx.lm.name,
        "model_fingerprint": ctx.lm.fingerprint,
        "weights": ctx.lm.origin,
        "device": device_name(spec.device),
        "dtype": spec.dtype,
        "memory": {
            "statistics": "activation statistics and Gram matrices in float64, summed on "
            "the device, kept in the disk cache and read a layer at a time",
            **({"layout": ctx.pruner.layout.describe()} if ctx.pruner.layout else {}),
            **(
                {"refit_factors": ctx.pruner.refitter.placement()}
                if ctx.pruner.refitter is not None
                else {}
            ),
        },
        "criterion": spec.criterion,
        "operator": ctx.pruner.describe(),
        "calibration": ctx.scores.calibration,
        "text": ctx.cheap.protocol().get("source"),
        "search_metric": ctx.cheap.protocol(),
        "slos": list(spec.slos),
        "sampler": spec.sampler,
        "seed": spec.seed,
        # where the search may end before --trials (the runs that resume it may differ:
        # frontier:early_stop records where it did)
        "early_stop": EarlyStop().to_dict() if spec.early_stop else "off",
        "final_remeasurement": {
            "report_tokens": spec.report_tokens,
            "fit_tokens": spec.fit_tokens,
            # the level of every held-out interval (perplexity ratio, task retention)
            "confidence": spec.confidence,
            "rule": "trials that met the SLOs at search time, from the smallest up until one "
            "passes held out, and the bisected uniform plan, on report_tokens; evenly spaced "
            "Pareto trials (report_points in all), which only spread the front for the fits "
            "and are never chosen, on fit_tokens",
        },
        "search_space": {
            "min_keep": spec.min_keep,
            "max_keep": spec.max_keep,
            "step": spec.step,
            "groups": ctx.space.n_groups,
            "multiple": spec.multiple,
        },
        # which allocations the warm start tries beside the uniform plan
        "allocation": {
            "families": list(spec.families),
            "global_threshold": "one price per kept neuron over the criterion's cost curves"
            if get_criterion(spec.criterion).comparable
            else f"none: {spec.criterion}'s scores do not compare across layers",
        },
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "optuna": optuna.__version__,
            "lm_eval": getattr(lm_eval, "__version__", "unknown"),
        },
        "threads": torch.get_num_threads(),
    }
    if ctx.tasks is not None:
        out["tasks_search"] = ctx.tasks.protocol()
    if ctx.extras:  # objective-backed SLO metrics: measured at search time, kept at the end
        out["slo_metrics"] = {name: obj.protocol() for name, obj in ctx.extras.items()}
    return out
