"""The refitted down weights of an export, stored beside ``compression.json``.

The weights are saved exactly as they were applied (the model's own dtype), so
:func:`frontier.export.apply_compression` rebuilds a refitted export bit for bit from the
original model, without the calibration pass or its Gram matrices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from frontier._io import write_bytes_atomic
from frontier.errors import FrontierError
from frontier.export._record import REFIT_NAME
from frontier.pruning.refit import DownWeights


def write_refit(folder: Path, refit: Sequence[DownWeights | None]) -> dict[str, Any]:
    """Write ``refit.safetensors`` into ``folder``; return the record's entry for it."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    layers = []
    for i, new in enumerate(refit):
        if new is None:
            continue
        layers.append(i)
        tensors[f"down.{i}.weight"] = new.weight.detach().cpu().contiguous()
        if new.bias is not None:
            tensors[f"down.{i}.bias"] = new.bias.detach().cpu().contiguous()
    data = save(tensors, metadata={"format": "pt"})
    write_bytes_atomic(folder / REFIT_NAME, data)
    return {"file": REFIT_NAME, "sha256": hashlib.sha256(data).hexdigest(), "layers": layers}


def load_checked(path: Path, sha256: str, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file an export's record names (``what`` it holds),
    checked against the record's sha256; a missing, changed or unreadable file is a
    one-line error."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FrontierError(f"{path}: the record needs its {what} ({exc.strerror})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise FrontierError(f"{path}: does not match the sha256 in the record")
    try:
        return load(data)
    except (SafetensorError, ValueError) as exc:
        raise FrontierError(f"{path}: unreadable ({exc})") from None


def read_refit(
    folder: Path, entry: dict[str, Any], n_layers: int, device: torch.device
) -> list[DownWeights | None]:
    """The refitted weights an export's record names, checked against its sha256."""
    path = folder / REFIT_NAME
    tensors = load_checked(path, entry["sha256"], "refitted weights")
    out: list[DownWeights | None] = [None] * n_layers
    for i in entry.get("layers", []):
        if not 0 <= int(i) < n_layers or f"down.{i}.weight" not in tensors:
            raise FrontierError(f"{path}: no refitted weight for layer {i}")
        bias = tensors.get(f"down.{i}.bias")
        out[int(i)] = DownWeights(
            tensors[f"down.{i}.weight"].to(device), None if bias is None else bias.to(device)
        )
    return out
