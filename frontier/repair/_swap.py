"""The teacher without a second copy: swap the original MLP modules back in for a forward.

:class:`frontier.pruning.surgery.Pruner` keeps the unpruned projection modules aside (it never
copies or modifies them), so the unpruned model is the pruned one with those modules put
back. Only MLP modules are trained, so every other weight is shared and the teacher's
logits are bit-identical to the unpruned model's, at the cost of one extra forward and
no extra memory beyond the modules the pruner already holds.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import nn

from frontier.arch import MLPHandle

Modules = list[dict[str, nn.Module]]


class TeacherSwap:
    """Per-layer original and pruned (trainable) projection modules of one model."""

    def __init__(self, handles: Sequence[MLPHandle], originals: Modules, names: Sequence[str]):
        self.handles = list(handles)
        self.originals = originals
        self.pruned: Modules = []
        for h, orig in zip(self.handles, originals, strict=True):
            layer: dict[str, nn.Module] = {}
            for name in names:
                module = h.get(name)
                if module is orig[name]:  # a layer the plan keeps whole: train a copy
                    module = copy.deepcopy(module)
                    h.set(name, module)
                layer[name] = module
            self.pruned.append(layer)

    def parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.pruned for m in layer.values() for p in m.parameters()]

    def _put(self, modules: Modules) -> None:
        for h, layer in zip(self.handles, modules, strict=True):
            for name, module in layer.items():
                h.set(name, module)

    @contextmanager
    def teacher(self) -> Iterator[None]:
        """The unpruned model for the duration of the block."""
        self._put(self.originals)
        try:
            yield
        finally:
            self._put(self.pruned)
