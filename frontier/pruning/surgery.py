"""Surgery: cut a model down to a selection in place, and restore it exactly.

Applying swaps physically smaller projection modules into every MLP: the selected
neurons of each layer are kept, in their original order, and the down projection can be
given new (refitted) weights for them. The original modules are kept aside (not copied)
and put back by :meth:`Pruner.restore`, so the unpruned weights are bit-identical
afterwards. Which neurons to keep is :mod:`frontier.pruning.selection`'s job; a pruner given
scores selects plans for convenience, one given none only cuts selections.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from frontier.arch import MLPAdapter, MLPHandle, WeightLayout, adapter_for
from frontier.arch.weights import down_vectors, shrink_down, shrink_up
from frontier.errors import FrontierError
from frontier.pruning.parking import Parking, module_bytes
from frontier.pruning.plan import Plan
from frontier.pruning.refit import DownWeights
from frontier.pruning.selection import Selection, Selector

__all__ = ["Pruner", "Selection", "count_mlp_parameters", "count_parameters"]


class Pruner:
    """Applies selections (or, given scores, plans) to one model.

    Args:
        model: a causal LM of a supported family (modified in place while a plan is applied).
        scores: one 1-D tensor per layer, higher = more important; needed only to apply
            plans rather than selections.
        mean_activation: per-layer mean activation at the down projection's input; needed
            only for bias compensation (the dropped neurons' mean contribution is folded
            into the down projection's bias).
    """

    def __init__(
        self,
        model: nn.Module,
        scores: Sequence[torch.Tensor] | None = None,
        *,
        mean_activation: Sequence[torch.Tensor] | None = None,
        adapter: MLPAdapter | None = None,
    ) -> None:
        self.model = model
        self.adapter = adapter or adapter_for(model.config)
        self.handles: list[MLPHandle] = self.adapter.handles(model)
        self.full: tuple[int, ...] = tuple(h.width for h in self.handles)
        self._selector: Selector | None = None
        if scores is not None:
            if len(scores) != len(self.handles):
                raise FrontierError(f"{len(scores)} score vectors for {len(self.handles)} layers")
            for i, (s, f) in enumerate(zip(scores, self.full, strict=True)):
                if s.shape != (f,):
                    raise FrontierError(f"layer {i}: scores of shape {tuple(s.shape)}, width {f}")
            self._selector = Selector(scores)
        self._mean = list(mean_activation) if mean_activation is not None else None
        self._originals: list[dict[str, nn.Module]] | None = None
        self.parking = Parking()

    @property
    def applied(self) -> bool:
        return self._originals is not None

    def dense_plan(self, *, multiple: int = 8, floor: int = 8) -> Plan:
        return Plan(self.full, self.full, multiple, floor)

    def select(self, plan: Plan) -> Selection:
        if self._selector is None:
            raise FrontierError("this pruner has no importance scores: apply a Selection")
        if plan.full != self.full:
            raise FrontierError(
                f"plan is for MLP widths {plan.full[:3]}..., this model has {self.full[:3]}..."
            )
        return self._selector.select(plan)

    def apply(
        self,
        plan: Plan | Selection,
        *,
        compensate: bool = False,
        refit: Sequence[DownWeights | None] | None = None,
        room: int | None = None,
    ) -> Selection:
        """Swap smaller MLP projections into the model. Restore before applying again.

        ``refit`` gives, per layer, the down projection's new weights for the kept
        neurons (in the module's layout) and its new bias (None keeps the bias it has).
        ``room``: the device bytes the pruned projections may add (None: no limit); beyond
        it, each further layer's unpruned projections are parked in host memory until
        :meth:`restore` (:mod:`frontier.pruning.parking`).
        """
        if self._originals is not None:
            raise RuntimeError("a plan is already applied; call restore() first")
        selection = plan if isinstance(plan, Selection) else self.select(plan)
        if selection.plan.full != self.full:
            raise FrontierError("selection is for a model with other MLP widths")
        if compensate and self._mean is None:
            raise FrontierError("bias compensation needs calibration activation statistics")
        if compensate and refit is not None:
            raise FrontierError("bias compensation and the refit exclude each other")
        originals: list[dict[str, nn.Module]] = []
        news = refit if refit is not None else [None] * len(self.handles)
        try:
            self._swap_in(selection, news, originals, compensate, room)
        except BaseException:
            self._originals = originals  # put back what was swapped, unpark what was parked
            self.restore()
            raise
        self._originals = originals
        return selection

    def _swap_in(
        self,
        selection: Selection,
        news: Sequence[DownWeights | None],
        originals: list[dict[str, nn.Module]],
        compensate: bool,
        room: int | None,
    ) -> None:
        ad = self.adapter
        with torch.no_grad():
            for h, keep, full, new in zip(
                self.handles, selection.kept, self.full, news, strict=True
            ):
                saved = {n: h.get(n) for n in (*ad.up, ad.down)}
                originals.append(saved)
                if keep.numel() == full:
                    continue
                keep = keep.to(next(saved[ad.down].parameters()).device)  # once per layer
                for name in ad.up:
                    h.set(name, shrink_up(saved[name], keep, ad.layout, fused=ad.fused_gate_up))
                delta = None
                if compensate and self._mean is not None:
                    vecs = down_vectors(saved[ad.down], ad.layout)
                    dropped = torch.ones(full, dtype=torch.bool, device=vecs.device)
                    dropped[keep] = False
                    mean = self._mean[h.index].to(vecs.device, vecs.dtype)
                    delta = mean[dropped] @ vecs[dropped]
                down = shrink_down(saved[ad.down], keep, ad.layout, bias_delta=delta, new=new)
                if not keep.numel() and ad.layout is WeightLayout.CONV1D:
                    down.__class__ = _reading_nothing(type(down))
                h.set(ad.down, down)
                if room is not None:
                    # a parameter the pruned modules share with the unpruned (a bias the
                    # cut keeps as it is) is neither added nor parked
                    shared = {id(p) for n in saved for p in h.get(n).parameters()}
                    shared &= {id(p) for m in saved.values() for p in m.parameters()}
                    room -= module_bytes((h.get(n) for n in saved), skip=shared)
                    if room < 0:
                        room += self.parking.park(saved.values(), skip=shared)

    def restore(self) -> None:
        if self._originals is None:
            return
        # after a failed apply, the originals of the layers it reached
        for h, saved in zip(self.handles, self._originals, strict=False):
            for name, module in saved.items():
                h.set(name, module)
            if len(self.parking):
                self.parking.unpark(saved.values())  # after its pruned copy was let go
        self._originals = None

    @contextmanager
    def pruned(
        self,
        plan: Plan | Selection,
        *,
        compensate: bool = False,
        refit: Sequence[DownWeights | None] | None = None,
    ) -> Iterator[Selection]:
        selection = self.apply(plan, compensate=compensate, refit=refit)
        try:
            yield selection
        finally:
            self.restore()


_READING_NOTHING: dict[type, Any] = {}


def _reading_nothing(cls: type) -> Any:
    """``cls`` (transformers' ``Conv1D``) as the down projection of a removed MLP (width
    0): Conv1D flattens its input with ``view(-1, 0)``, which torch cannot size, so this
    subclass adds its bias alone, as the product with no columns does (bit for bit: the
    heterogeneous export's modeling file builds the same)."""
    if cls not in _READING_NOTHING:

        def forward(self: Any, x: torch.Tensor) -> torch.Tensor:
            return x.new_zeros((*x.shape[:-1], self.weight.shape[1])) + self.bias

        _READING_NOTHING[cls] = type(f"{cls.__name__}ReadingNothing", (cls,), {"forward": forward})
    return _READING_NOTHING[cls]


def count_parameters(model: nn.Module) -> int:
    """Unique parameters: ``parameters()`` yields a tied embedding once."""
    return sum(p.numel() for p in model.parameters())


def count_mlp_parameters(model: nn.Module, adapter: MLPAdapter | None = None) -> int:
    adapter = adapter or adapter_for(model.config)
    total = 0
    for h in adapter.handles(model):
        for m in (*h.up_modules, h.down_module):
            total += sum(p.numel() for p in m.parameters(recurse=False))
    return total
