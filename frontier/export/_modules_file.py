"""Reconstructed MLP projections of an export, stored beside ``compression.json``.

A local reconstruction (:mod:`frontier.reconstruct`) trains every projection of a pruned
MLP, so neither the kept indices nor the refit rebuild them: the projections' weights and
biases are saved exactly as they were applied (the model's own dtype), and
:func:`frontier.export.apply_compression` puts them back over the cut model bit for bit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from frontier._io import write_bytes_atomic
from frontier.arch import MLPHandle
from frontier.arch.weights import clone_shell
from frontier.errors import FrontierError
from frontier.export._record import RECONSTRUCT_NAME, CompressionRecord
from frontier.models import LoadedModel
from frontier.pruning.refit import DownWeights
from frontier.pruning.selection import Selection

Weights = list[dict[str, dict[str, torch.Tensor]]]  # per layer, per projection: weight, bias
_PARTS = ("weight", "bias")


def write_modules(folder: Path, modules: Sequence[dict[str, nn.Module]]) -> dict[str, Any]:
    """Write ``reconstruct.safetensors`` into ``folder``; return the record's file entry."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    layers = []
    for i, layer in enumerate(modules):
        if not layer:
            continue
        layers.append(i)
        for name, module in sorted(layer.items()):
            for part in _PARTS:
                t = getattr(module, part, None)
                if t is not None:
                    tensors[f"{i}.{name}.{part}"] = t.detach().cpu().contiguous()
    data = save(tensors, metadata={"format": "pt"})
    write_bytes_atomic(folder / RECONSTRUCT_NAME, data)
    return {"file": RECONSTRUCT_NAME, "sha256": hashlib.sha256(data).hexdigest(), "layers": layers}


def read_modules(folder: Path, entry: dict[str, Any], n_layers: int) -> Weights:
    """The stored projections an export's record names, checked against its sha256."""
    from frontier.export._refit_file import load_checked

    path = folder / RECONSTRUCT_NAME
    tensors = load_checked(path, entry["sha256"], "reconstructed weights")
    out: Weights = [{} for _ in range(n_layers)]
    for key, t in tensors.items():
        layer, name, part = key.split(".", 2) if key.count(".") >= 2 else ("", "", "")
        if not layer.isdigit() or part not in _PARTS or not 0 <= int(layer) < n_layers:
            raise FrontierError(f"{path}: unexpected tensor {key!r}")
        out[int(layer)].setdefault(name, {})[part] = t
    for i in entry.get("layers", []):
        if not 0 <= int(i) < n_layers or not out[int(i)]:
            raise FrontierError(f"{path}: no reconstructed weights for layer {i}")
    return out


def stored_modules(
    folder: Path,
    record: CompressionRecord,
    lm: LoadedModel,
    selection: Selection,
    refit: Sequence[DownWeights | None] | None,
) -> tuple[list[dict[str, nn.Module]] | None, dict[str, Any] | None]:
    """For ``apply``: the reconstructed projections an export's record names, built over
    the cut model, and the reconstruction's record without its file entry; (None, None)
    for an export without a reconstruction."""
    if record.reconstruct is None:
        return None, None
    from frontier.pruning.surgery import Pruner

    weights = read_modules(folder, record.reconstruct, record.plan.n_layers)
    pruner = Pruner(lm.model, adapter=lm.adapter)
    with pruner.pruned(selection, refit=refit):
        modules = _over(pruner.handles, weights)
    meta = {k: v for k, v in record.reconstruct.items() if k not in ("file", "sha256", "layers")}
    return modules, meta


def _over(handles: Sequence[MLPHandle], weights: Weights) -> list[dict[str, nn.Module]]:
    """Per layer, copies of the projections the handles hold (the cut model's) carrying the
    stored tensors, which must have their shapes."""
    out: list[dict[str, nn.Module]] = []
    for h, layer in zip(handles, weights, strict=True):
        got: dict[str, nn.Module] = {}
        for name, parts in layer.items():
            if name not in (*h.adapter.up, h.adapter.down):
                raise FrontierError(f"layer {h.index}: {name!r} is not an MLP projection")
            module = clone_shell(h.get(name))
            for part, t in parts.items():
                old = getattr(module, part, None)
                if old is None or tuple(old.shape) != tuple(t.shape):
                    raise FrontierError(
                        f"layer {h.index}: stored {name}.{part} of shape {tuple(t.shape)} "
                        "does not fit the cut model"
                    )
                setattr(module, part, nn.Parameter(t.to(old.device), requires_grad=False))
            got[name] = module
        out.append(got)
    return out
