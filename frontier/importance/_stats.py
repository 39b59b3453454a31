"""Activation statistics at every down projection's input, from one calibration pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from frontier.arch import MLPAdapter


@dataclass(frozen=True)
class ActivationStats:
    """Per layer, per neuron: mean, mean |x| and variance of the activation feeding down.

    Accumulated in float64 over ``tokens`` calibration tokens.
    """

    mean: tuple[torch.Tensor, ...]
    abs_mean: tuple[torch.Tensor, ...]
    var: tuple[torch.Tensor, ...]
    tokens: int

    def to_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {"tokens": torch.tensor([self.tokens])}
        for i, (m, a, v) in enumerate(zip(self.mean, self.abs_mean, self.var, strict=True)):
            out[f"mean.{i}"], out[f"abs_mean.{i}"], out[f"var.{i}"] = m, a, v
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> ActivationStats:
        n = sum(1 for k in tensors if k.startswith("mean."))
        return cls(
            mean=tuple(tensors[f"mean.{i}"] for i in range(n)),
            abs_mean=tuple(tensors[f"abs_mean.{i}"] for i in range(n)),
            var=tuple(tensors[f"var.{i}"] for i in range(n)),
            tokens=int(tensors["tokens"][0]),
        )


class _Accumulator:
    def __init__(self, width: int) -> None:
        self.sum = torch.zeros(width, dtype=torch.float64)
        self.sumsq = torch.zeros(width, dtype=torch.float64)
        self.sum_abs = torch.zeros(width, dtype=torch.float64)
        self.count = 0

    def __call__(self, _module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0].detach().reshape(-1, args[0].shape[-1]).to(torch.float64)
        self.sum += x.sum(0).cpu()
        self.sumsq += (x * x).sum(0).cpu()
        self.sum_abs += x.abs().sum(0).cpu()
        self.count += x.shape[0]


@torch.no_grad()  # not inference_mode: the stats must stay usable with autograd tensors
def collect_stats(
    model: nn.Module, adapter: MLPAdapter, ids: torch.Tensor, *, batch_size: int = 4
) -> ActivationStats:
    """Run ``ids`` ([n, seq_len]) through the decoder stack, skipping the LM head."""
    handles = adapter.handles(model)
    accs = [_Accumulator(h.width) for h in handles]
    hooks = [h.down_module.register_forward_pre_hook(a) for h, a in zip(handles, accs, strict=True)]
    backbone = adapter.backbone(model)
    device = next(model.parameters()).device
    try:
        for start in range(0, ids.shape[0], batch_size):
            backbone(input_ids=ids[start : start + batch_size].to(device), use_cache=False)
    finally:
        for hook in hooks:
            hook.remove()
    means, abs_means, vars_ = [], [], []
    for a in accs:
        n = max(a.count, 1)
        mean = a.sum / n
        means.append(mean)
        abs_means.append(a.sum_abs / n)
        vars_.append((a.sumsq / n - mean * mean).clamp_min(0.0))
    return ActivationStats(tuple(means), tuple(abs_means), tuple(vars_), accs[0].count)
