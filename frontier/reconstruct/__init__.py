"""Local reconstruction: each pruned MLP's remaining gate, up and down projections trained
together, layer by layer, to reproduce the unpruned MLP's output on calibration inputs.

It sits between the refit (closed form, down projection alone) and the repair (whole-model
distillation, :mod:`frontier.repair`): each layer is fitted on its own, so memory stays
one layer's worth of activations and the cost is a few hundred small steps per layer.

Names load on first use, so that ``frontier --help`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from frontier.reconstruct._config import INPUTS, TARGETS, Inputs, ReconstructConfig, Target
    from frontier.reconstruct._fit import LayerFit, fit_layer
    from frontier.reconstruct._record import reconstruct_record
    from frontier.reconstruct._run import ReconstructResult, reconstruct, reconstruct_modules

_WHERE = {
    "INPUTS": "_config",
    "Inputs": "_config",
    "ReconstructConfig": "_config",
    "TARGETS": "_config",
    "Target": "_config",
    "LayerFit": "_fit",
    "fit_layer": "_fit",
    "reconstruct_record": "_record",
    "ReconstructResult": "_run",
    "reconstruct": "_run",
    "reconstruct_modules": "_run",
}

__all__ = [
    "INPUTS",
    "TARGETS",
    "Inputs",
    "LayerFit",
    "ReconstructConfig",
    "ReconstructResult",
    "Target",
    "fit_layer",
    "reconstruct",
    "reconstruct_modules",
    "reconstruct_record",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'frontier.reconstruct' has no attribute {name!r}")
    return getattr(importlib.import_module(f"frontier.reconstruct.{_WHERE[name]}"), name)
