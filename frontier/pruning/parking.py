"""Unpruned projections parked in host memory while a plan is applied.

A trial keeps the unpruned MLP projections for the exact restore, beside the pruned ones
it swapped in. On a GPU too small for both (Llama-3.1-8B in bf16 on 24 GB: 10.5 GiB of
MLP weights and their pruned copies), :class:`Parking` moves the weights of as many
unpruned layers as it must to host memory while the plan is applied and back when it is
restored, bit for bit. Each parked parameter gets one host buffer (pinned where it comes
from a GPU), kept and reused by every later trial; the parameter itself holds an empty
tensor while parked, so a module used while parked fails loudly rather than silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Set

import torch
from torch import nn


def module_bytes(modules: Iterable[nn.Module], skip: Set[int] = frozenset()) -> int:
    """The bytes of the modules' parameters (but those whose ``id`` is in ``skip``)."""
    return sum(
        p.numel() * p.element_size() for m in modules for p in m.parameters() if id(p) not in skip
    )


class Parking:
    """Host buffers for parked parameters, and the parameters parked now."""

    def __init__(self) -> None:
        self._buffers: dict[int, torch.Tensor] = {}  # by id of the parameter
        self._parked: dict[int, tuple[nn.Parameter, torch.device]] = {}
        self.moved_bytes = 0  # both ways, since this parking was made

    def park(self, modules: Iterable[nn.Module], skip: Set[int] = frozenset()) -> int:
        """Move the modules' parameters (but those whose ``id`` is in ``skip``: in use
        elsewhere) to host memory; the bytes they held on the device."""
        freed = 0
        for module in modules:
            for p in module.parameters():
                key = id(p)
                if key in self._parked or key in skip:
                    continue
                buf = self._buffers.get(key)
                if buf is None or buf.shape != p.shape or buf.dtype != p.dtype:
                    pin = p.device.type == "cuda"
                    buf = torch.empty(p.shape, dtype=p.dtype, device="cpu", pin_memory=pin)
                    self._buffers[key] = buf
                buf.copy_(p.data)
                self._parked[key] = (p, p.device)
                freed += p.numel() * p.element_size()
                p.data = torch.empty(0, dtype=p.dtype, device=p.device)
        self.moved_bytes += freed
        return freed

    def unpark(self, modules: Iterable[nn.Module]) -> None:
        """Move the modules' parked parameters back to where they were."""
        for module in modules:
            for p in module.parameters():
                entry = self._parked.pop(id(p), None)
                if entry is None:
                    continue
                _, device = entry
                buf = self._buffers[id(p)]
                p.data = buf.to(device, non_blocking=device.type == "cuda", copy=True)
                self.moved_bytes += buf.numel() * buf.element_size()

    def __len__(self) -> int:
        return len(self._parked)
