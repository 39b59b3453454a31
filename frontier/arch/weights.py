"""Pure functions on projection weights: neuron views and physically smaller copies.

A *neuron* is one unit of the MLP's hidden width: an output row of every up
projection (gate and up, or the two halves of a fused gate_up) and an input column of
the down projection. These functions never modify their inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from frontier.arch._layout import WeightLayout


def neuron_count(down: Any, layout: WeightLayout) -> int:
    w = down.weight
    return int(w.shape[0] if layout is WeightLayout.CONV1D else w.shape[1])


def down_vectors(down: Any, layout: WeightLayout) -> torch.Tensor:
    """[I, H]: row j is what neuron j writes to the residual stream per unit activation."""
    w = down.weight.detach()
    return w if layout is WeightLayout.CONV1D else w.t()


def down_matrix(down: Any, layout: WeightLayout) -> tuple[torch.Tensor, torch.Tensor | None]:
    """([H, I] with column j what neuron j writes, the bias [H] or None where there is none):
    the down projection as the refit and the greedy OBS ranking regress it."""
    bias = getattr(down, "bias", None)
    return down_vectors(down, layout).t(), (None if bias is None else bias.detach())


def up_vectors(up: Any, layout: WeightLayout, *, fused: bool) -> list[torch.Tensor]:
    """[I, H] per input path of the neurons (two for a fused gate_up)."""
    w = up.weight.detach()
    w = w.t() if layout is WeightLayout.CONV1D else w
    if fused:
        half = w.shape[0] // 2
        return [w[:half], w[half:]]
    return [w]


def clone_shell(module: nn.Module) -> Any:
    """A new module of the same class sharing nothing mutable with ``module``.

    ``copy.copy`` would share ``_parameters``/``_modules`` dicts with the original,
    so replacing a weight on the copy would also replace it on the original.
    """
    cls = type(module)
    new = cls.__new__(cls)
    new.__dict__.update(module.__dict__)
    for key, value in module.__dict__.items():
        if isinstance(value, dict):  # _parameters, _buffers, _modules, hook dicts
            new.__dict__[key] = value.copy()
    return new


def shrink_up(up: Any, keep: torch.Tensor, layout: WeightLayout, *, fused: bool) -> nn.Module:
    """Copy of ``up`` producing only neurons ``keep`` (sorted int64 indices)."""
    if fused:
        half = up.weight.shape[1 if layout is WeightLayout.CONV1D else 0] // 2
        keep = torch.cat([keep, keep + half])
    keep = keep.to(up.weight.device)
    new = clone_shell(up)
    dim = 1 if layout is WeightLayout.CONV1D else 0
    new.weight = nn.Parameter(up.weight.detach().index_select(dim, keep), requires_grad=False)
    if getattr(up, "bias", None) is not None:
        new.bias = nn.Parameter(up.bias.detach().index_select(0, keep), requires_grad=False)
    if layout is WeightLayout.CONV1D:
        new.nf = int(keep.numel())
    else:
        new.out_features = int(keep.numel())
    return new


def shrink_down(
    down: Any,
    keep: torch.Tensor,
    layout: WeightLayout,
    *,
    bias_delta: torch.Tensor | None = None,
    new: Any = None,
) -> nn.Module:
    """Copy of ``down`` reading only neurons ``keep``; ``bias_delta`` is added to its bias.

    A bias is created when ``bias_delta`` is given and the projection had none. ``new``
    (a :class:`frontier.pruning.refit.DownWeights`) replaces the kept columns' weights, and the
    bias when it carries one.
    """
    keep = keep.to(down.weight.device)
    shell = clone_shell(down)
    dim = 0 if layout is WeightLayout.CONV1D else 1
    if new is not None:
        expected = list(down.weight.shape)
        expected[dim] = int(keep.numel())
        if list(new.weight.shape) != expected:
            raise ValueError(f"refit weight {tuple(new.weight.shape)}, expected {expected}")
        weight = new.weight.to(down.weight.dtype)
    else:
        weight = down.weight.detach().index_select(dim, keep)
    shell.weight = nn.Parameter(weight, requires_grad=False)
    if layout is WeightLayout.LINEAR:
        shell.in_features = int(keep.numel())
    if new is not None and new.bias is not None:
        shell.bias = nn.Parameter(new.bias.to(down.weight.dtype), requires_grad=False)
    bias = getattr(down, "bias", None)
    if bias_delta is not None:
        base = bias.detach() if bias is not None else torch.zeros_like(bias_delta)
        shell.bias = nn.Parameter(base + bias_delta.to(base.dtype), requires_grad=False)
    return shell
