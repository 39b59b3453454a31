"""Apply a plan to a model in place, and restore it exactly.

Applying swaps physically smaller projection modules into every MLP: the top-scored
neurons of each layer are kept, in their original order. The original modules are kept
aside (not copied) and put back by :meth:`Pruner.restore`, so the unpruned weights are
bit-identical afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from frontier.arch import MLPAdapter, MLPHandle, adapter_for
from frontier.arch._weights import down_vectors, shrink_down, shrink_up
from frontier.errors import FrontierError
from frontier.plan import Plan


@dataclass(frozen=True)
class Selection:
    """The kept neuron indices of every layer (sorted ascending), for one plan."""

    plan: Plan
    kept: tuple[torch.Tensor, ...]

    def to_lists(self) -> list[list[int]]:
        return [k.tolist() for k in self.kept]

    @classmethod
    def from_lists(cls, plan: Plan, kept: Sequence[Sequence[int]]) -> Selection:
        if len(kept) != plan.n_layers:
            raise FrontierError(f"{len(kept)} index lists for a {plan.n_layers}-layer plan")
        tensors = []
        for i, (idx, w, f) in enumerate(zip(kept, plan.widths, plan.full, strict=True)):
            t = torch.as_tensor(list(idx), dtype=torch.long)
            if t.numel() != w:
                raise FrontierError(f"layer {i}: {t.numel()} kept indices for width {w}")
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= f or t.unique().numel() != w):
                raise FrontierError(f"layer {i}: kept indices out of range or repeated")
            tensors.append(t.sort().values)
        return cls(plan, tuple(tensors))


class Pruner:
    """Applies plans to one model using one set of per-neuron importance scores.

    Args:
        model: a causal LM of a supported family (modified in place while a plan is applied).
        scores: one 1-D tensor per layer, higher = more important.
        mean_activation: per-layer mean activation at the down projection's input; needed
            only for bias compensation (the dropped neurons' mean contribution is folded
            into the down projection's bias).
    """

    def __init__(
        self,
        model: nn.Module,
        scores: Sequence[torch.Tensor],
        *,
        mean_activation: Sequence[torch.Tensor] | None = None,
        adapter: MLPAdapter | None = None,
    ) -> None:
        self.model = model
        self.adapter = adapter or adapter_for(model.config)
        self.handles: list[MLPHandle] = self.adapter.handles(model)
        self.full: tuple[int, ...] = tuple(h.width for h in self.handles)
        if len(scores) != len(self.handles):
            raise FrontierError(f"{len(scores)} score vectors for {len(self.handles)} layers")
        for i, (s, f) in enumerate(zip(scores, self.full, strict=True)):
            if s.shape != (f,):
                raise FrontierError(f"layer {i}: scores of shape {tuple(s.shape)}, width {f}")
        # Descending order once; stable so equal scores keep the lower index.
        self._order = [torch.argsort(s.float(), descending=True, stable=True) for s in scores]
        self._mean = list(mean_activation) if mean_activation is not None else None
        self._originals: list[dict[str, nn.Module]] | None = None

    @property
    def applied(self) -> bool:
        return self._originals is not None

    def dense_plan(self, *, multiple: int = 8, floor: int = 8) -> Plan:
        return Plan(self.full, self.full, multiple, floor)

    def select(self, plan: Plan) -> Selection:
        if plan.full != self.full:
            raise FrontierError(
                f"plan is for MLP widths {plan.full[:3]}..., this model has {self.full[:3]}..."
            )
        kept = tuple(
            order[:w].sort().values for order, w in zip(self._order, plan.widths, strict=True)
        )
        return Selection(plan, kept)

    def apply(self, plan: Plan | Selection, *, compensate: bool = False) -> Selection:
        """Swap smaller MLP projections into the model. Restore before applying again."""
        if self._originals is not None:
            raise RuntimeError("a plan is already applied; call restore() first")
        selection = plan if isinstance(plan, Selection) else self.select(plan)
        if selection.plan.full != self.full:
            raise FrontierError("selection is for a model with other MLP widths")
        if compensate and self._mean is None:
            raise FrontierError("bias compensation needs calibration activation statistics")
        ad = self.adapter
        originals: list[dict[str, nn.Module]] = []
        with torch.no_grad():
            for h, keep, full in zip(self.handles, selection.kept, self.full, strict=True):
                saved = {n: h.get(n) for n in (*ad.up, ad.down)}
                originals.append(saved)
                if keep.numel() == full:
                    continue
                for name in ad.up:
                    h.set(name, shrink_up(saved[name], keep, ad.layout, fused=ad.fused_gate_up))
                delta = None
                if compensate and self._mean is not None:
                    vecs = down_vectors(saved[ad.down], ad.layout)
                    dropped = torch.ones(full, dtype=torch.bool, device=vecs.device)
                    dropped[keep.to(vecs.device)] = False
                    mean = self._mean[h.index].to(vecs.device, vecs.dtype)
                    delta = mean[dropped] @ vecs[dropped]
                h.set(ad.down, shrink_down(saved[ad.down], keep, ad.layout, bias_delta=delta))
        self._originals = originals
        return selection

    def restore(self) -> None:
        if self._originals is None:
            return
        for h, saved in zip(self.handles, self._originals, strict=True):
            for name, module in saved.items():
                h.set(name, module)
        self._originals = None

    @contextmanager
    def pruned(self, plan: Plan | Selection, *, compensate: bool = False) -> Iterator[Selection]:
        selection = self.apply(plan, compensate=compensate)
        try:
            yield selection
        finally:
            self.restore()


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
