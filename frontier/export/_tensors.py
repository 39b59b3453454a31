"""Pure functions on weights for export: zero-padded MLP projections, savable state dicts.

Padding appends zero neurons after the kept ones: zero rows in every up projection
(and zero up biases) and zero columns in the down projection. Whatever the activation
makes of a zero pre-activation, it is multiplied by a zero down column, so the padded
layer computes exactly what the pruned one does.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from frontier.arch import WeightLayout
from frontier.arch.weights import clone_shell


def _pad(t: torch.Tensor, dim: int, extra: int) -> torch.Tensor:
    shape = list(t.shape)
    shape[dim] = extra
    return torch.cat([t, t.new_zeros(shape)], dim=dim)


def _pad_halves(t: torch.Tensor, dim: int, extra: int) -> torch.Tensor:
    """Pad each half of a fused gate_up tensor separately, so gate and up stay aligned."""
    gate, up = t.chunk(2, dim=dim)
    return torch.cat([_pad(gate, dim, extra), _pad(up, dim, extra)], dim=dim)


def padded_up(up: nn.Module, width: int, layout: WeightLayout, *, fused: bool) -> nn.Module:
    """Copy of an up projection producing ``width`` neurons, the new ones always zero."""
    dim = 1 if layout is WeightLayout.CONV1D else 0
    weight = cast(torch.Tensor, up.weight)
    current = weight.shape[dim] // (2 if fused else 1)
    extra = width - current
    if extra < 0:
        raise ValueError(f"cannot pad {current} neurons down to {width}")
    pad = _pad_halves if fused else _pad
    new = clone_shell(up)
    new.weight = nn.Parameter(pad(weight.detach(), dim, extra), requires_grad=False)
    bias = getattr(up, "bias", None)
    if bias is not None:
        new.bias = nn.Parameter(pad(bias.detach(), 0, extra), requires_grad=False)
    out = width * (2 if fused else 1)
    if layout is WeightLayout.CONV1D:
        new.nf = out
    else:
        new.out_features = out
    return cast(nn.Module, new)


def padded_down(down: nn.Module, width: int, layout: WeightLayout) -> nn.Module:
    """Copy of a down projection reading ``width`` neurons; the new input columns are zero."""
    dim = 0 if layout is WeightLayout.CONV1D else 1
    weight = cast(torch.Tensor, down.weight)
    extra = width - weight.shape[dim]
    if extra < 0:
        raise ValueError(f"cannot pad {weight.shape[dim]} neurons down to {width}")
    new = clone_shell(down)
    new.weight = nn.Parameter(_pad(weight.detach(), dim, extra), requires_grad=False)
    if layout is WeightLayout.LINEAR:
        new.in_features = width
    return cast(nn.Module, new)


def savable_state_dict(model: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The model's tensors under their in-memory names, cast, tied duplicates kept once.

    safetensors refuses tensors that share memory; the first name of a shared tensor
    (the input embedding, registered before the LM head) is the one kept, and
    transformers re-ties the head on load.
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, tuple[int, ...]]] = set()
    for name, t in model.state_dict().items():
        key = (
            t.untyped_storage().data_ptr() + t.storage_offset() * t.element_size(),
            tuple(t.shape),
        )
        if t.numel() and key in seen:
            continue
        seen.add(key)
        t = t.detach()
        out[name] = (t.to(dtype) if t.is_floating_point() else t).contiguous().clone()
    return out


def rounded_state(model: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The model's state with every float tensor rounded to ``dtype`` and back.

    Used as the reference for a half-precision export: the same weights the file holds,
    computed in the model's own precision, so reloading it upcast must match closely.
    """
    return {
        k: (v.detach().to(dtype).to(v.dtype) if v.is_floating_point() else v)
        for k, v in model.state_dict().items()
    }
