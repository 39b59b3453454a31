"""What ``compression.json`` says about a local reconstruction (the ``reconstruct`` object)."""

from __future__ import annotations

from typing import Any

from frontier.reconstruct._fit import BETAS
from frontier.reconstruct._run import ReconstructResult

METHOD = (
    "local reconstruction: each pruned MLP's projections (gate, up and down, or the "
    "family's) trained together, layer by layer, to reproduce the unpruned MLP's output on "
    "calibration inputs, starting from the pruning operator's weights"
)


def reconstruct_record(result: ReconstructResult) -> dict[str, Any]:
    """The JSON object recorded under ``reconstruct``: the step, its data, steps, seed and
    held-out errors (per layer and their mean)."""
    cfg = result.config
    return {
        "method": METHOD,
        "inputs": (
            "the pruned model's own, as reconstructed up to each layer"
            if cfg.inputs == "pruned"
            else "the unpruned model's"
        ),
        "target": "the unpruned MLP's output on the same inputs",
        "loss": "sum ||f(x) - y||^2 / sum ||y||^2 over calibration tokens (relative error)",
        "optimizer": {
            "name": "Adam",
            "lr": cfg.lr,
            "betas": list(BETAS),
            "schedule": "cosine to 10% of lr over the steps",
            "batch_tokens": cfg.batch_tokens,
        },
        "seed": cfg.seed,
        "data": {
            **result.data,
            "never_read": ["search", "report"],
            "split": "calibration documents split by document into training and held-out",
        },
        "stop": "per layer: the weights at the best held-out error (never worse than the start)",
        "layers": [f.to_dict() for f in result.layers],
        "steps_run": sum(f.steps_run for f in result.layers),
        "heldout_error_before": result.heldout_before,
        "heldout_error_after": result.heldout_after,
        "trained_parameters": result.trained_parameters,
        "cpu_seconds": result.cpu_seconds,
        "wall_seconds": result.wall_seconds,
        "device": result.device,
        "precision": result.precision,
        "config": cfg.to_dict(),
    }
