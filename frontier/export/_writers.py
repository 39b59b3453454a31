"""The checkpoint writers of the export formats (:mod:`frontier.export.formats` names
them): each writes the pruned model's weights and config into a folder, with the same
arguments ``(folder, model, adapter, pruner, widths, dtype)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from frontier._io import write_bytes_atomic
from frontier.arch import MLPAdapter
from frontier.export._config import exported_config
from frontier.export._modeling import MODELING_FILE, render_modeling
from frontier.export._tensors import padded_down, padded_up, savable_state_dict
from frontier.pruning.surgery import Pruner

WEIGHTS_FILE = "model.safetensors"


def write_stock(
    tmp: Path,
    model: Any,
    adapter: MLPAdapter,
    pruner: Pruner,
    widths: tuple[int, ...],
    dtype: torch.dtype,
    *,
    pad: bool = False,
) -> None:
    """A stock checkpoint written by transformers (its own key names and tied weights)."""
    widest = max(widths)
    if pad:  # the pruner's restore() puts the original modules back over these
        for h in pruner.handles:
            for name in adapter.up:
                h.set(
                    name,
                    padded_up(h.get(name), widest, adapter.layout, fused=adapter.fused_gate_up),
                )
            h.set(adapter.down, padded_down(h.get(adapter.down), widest, adapter.layout))
    state = {
        k: v.detach().to(dtype) if v.is_floating_point() else v
        for k, v in model.state_dict().items()
    }
    architectures = model.config.architectures  # save_pretrained sets it on the caller's config
    try:
        model.save_pretrained(tmp, state_dict=state)
    finally:
        model.config.architectures = architectures
    config = exported_config(
        model.config,
        adapter,
        [widest] * len(widths),
        heterogeneous=False,
        dtype=dtype,
        architecture=type(model).__name__,
    )
    config.save_pretrained(tmp)


def write_heterogeneous(
    tmp: Path,
    model: Any,
    adapter: MLPAdapter,
    pruner: Pruner,
    widths: tuple[int, ...],
    dtype: torch.dtype,
) -> None:
    """Weights under their in-memory names (no family key renames: the loading class is
    custom code, which transformers loads without its per-family renames)."""
    from safetensors.torch import save_file

    save_file(savable_state_dict(model, dtype), str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
    config = exported_config(
        model.config,
        adapter,
        widths,
        heterogeneous=True,
        dtype=dtype,
        architecture=type(model).__name__,
    )
    config.save_pretrained(tmp)
    generation = getattr(model, "generation_config", None)
    if generation is not None:
        generation.save_pretrained(tmp)
    source = render_modeling(type(model).__name__, adapter)
    write_bytes_atomic(tmp / MODELING_FILE, source.encode())


def write_padded(
    tmp: Path,
    model: Any,
    adapter: MLPAdapter,
    pruner: Pruner,
    widths: tuple[int, ...],
    dtype: torch.dtype,
) -> None:
    """A stock checkpoint with every layer zero-padded to the widest kept width."""
    write_stock(tmp, model, adapter, pruner, widths, dtype, pad=True)
