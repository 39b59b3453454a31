"""Activation statistics at every down projection's input, from one calibration pass."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from frontier.arch import MLPAdapter
from frontier.importance._gram import GramAccumulator, GramStats, gram_groups, held_windows


@dataclass(frozen=True)
class ActivationStats:
    """Per layer, per neuron: mean, mean |x| and variance of the activation feeding down,
    and, when gathered, the Gram matrices of the same activations (:class:`GramStats`).

    Accumulated in float64 over ``tokens`` calibration tokens.
    """

    mean: tuple[torch.Tensor, ...]
    abs_mean: tuple[torch.Tensor, ...]
    var: tuple[torch.Tensor, ...]
    tokens: int
    # Gram matrices of the same pass, when gathered (cached in a file of their own)
    gram: GramStats | None = field(default=None, compare=False)

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
    return calibration_pass(model, adapter, ids, batch_size=batch_size, grams=False)[0]


GPU_GRAM_BUDGET = 16 * 2**30  # at most this much GPU memory for Gram sums at once


class _StopPass(Exception):
    """Raised after the last layer a pass needs: the rest of the model is not run."""


def _stop(_module: nn.Module, _args: tuple[Any, ...], _out: Any) -> None:
    raise _StopPass


@torch.no_grad()
def calibration_pass(
    model: nn.Module,
    adapter: MLPAdapter,
    ids: torch.Tensor,
    *,
    batch_size: int = 4,
    grams: bool = True,
    progress: Callable[[str], None] | None = None,
    gram_budget: int | None = None,
) -> tuple[ActivationStats, GramStats | None]:
    """One pass over ``ids``: activation statistics over every window and, with ``grams``,
    the Gram matrices of the fitting windows and of the held-out last windows apart.

    The Grams are summed on the model's device, for as many layers at a time as fit
    ``gram_budget`` bytes (default: all of them on the CPU; on a GPU 40% of its free
    memory, at most :data:`GPU_GRAM_BUDGET`). Where that is not every layer, the text is
    run again for each further group of layers, up to the group's last layer only.
    ``progress`` gets a line about every tenth of each pass."""
    handles = adapter.handles(model)
    device = next(model.parameters()).device
    accs = [_Accumulator(h.width) for h in handles]
    if grams and gram_budget is None and device.type == "cuda":
        gram_budget = min(int(torch.cuda.mem_get_info(device)[0] * 0.4), GPU_GRAM_BUDGET)
    groups = gram_groups([h.width for h in handles], gram_budget) if grams else [[]]
    backbone = adapter.backbone(model)
    n = ids.shape[0]
    split = n - (held_windows(n) if grams else 0)
    every = max(1, n // 10)
    gram_out: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    counts = (0, 0)
    for g, group in enumerate(groups):
        hooks = []
        if g == 0:  # the activation statistics need the whole model, once
            hooks = [
                h.down_module.register_forward_pre_hook(a)
                for h, a in zip(handles, accs, strict=True)
            ]
        elif group:  # later groups stop after their last layer
            hooks.append(handles[group[-1]].down_module.register_forward_hook(_stop))
        grams_acc = {i: GramAccumulator(handles[i].width, device) for i in group}
        for i, acc in grams_acc.items():
            hooks.append(handles[i].down_module.register_forward_pre_hook(acc))
        label = f" (layers {group[0]}-{group[-1]})" if len(groups) > 1 else ""
        try:
            for lo, hi in ((0, split), (split, n)):
                for acc in grams_acc.values():
                    acc.holding_out = lo > 0
                for start in range(lo, hi, batch_size):
                    end = min(start + batch_size, hi)
                    with contextlib.suppress(_StopPass):
                        backbone(input_ids=ids[start:end].to(device), use_cache=False)
                    if progress is not None and (end // every > start // every or end == n):
                        progress(
                            f"calibration pass{label}: {end * ids.shape[1]:,}/{ids.numel():,} "
                            "tokens"
                        )
        finally:
            for hook in hooks:
                hook.remove()
        for i, acc in grams_acc.items():
            gram_out[i] = acc.result()
            counts = (acc.fit_count, acc.held_count)
        del grams_acc
    means, abs_means, vars_ = [], [], []
    for a in accs:
        count = max(a.count, 1)
        mean = a.sum / count
        means.append(mean)
        abs_means.append(a.sum_abs / count)
        vars_.append((a.sumsq / count - mean * mean).clamp_min(0.0))
    if not grams:
        return ActivationStats(tuple(means), tuple(abs_means), tuple(vars_), accs[0].count), None
    gram = GramStats(
        fit=tuple(gram_out[i][0] for i in range(len(handles))),
        held=tuple(gram_out[i][1] for i in range(len(handles))),
        fit_tokens=counts[0],
        held_tokens=counts[1],
    )
    stats = ActivationStats(tuple(means), tuple(abs_means), tuple(vars_), accs[0].count, gram)
    return stats, gram
