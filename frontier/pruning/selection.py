"""Selection: which neurons of every layer a plan keeps. Pure: no model, no surgery.

A :class:`Selector` ranks each layer's neurons once by importance score; selecting a
plan takes the top ``width`` of every layer. A :class:`Selection` (the kept indices) is
all that surgery (:mod:`frontier.pruning.surgery`) and export need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan


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


class Selector:
    """Chooses kept neurons from one set of importance scores (higher = keep).

    Equal scores keep the lower index. ``orders[i]`` is layer ``i``'s ranking, most
    important first; every selection keeps a prefix of it.
    """

    def __init__(self, scores: Sequence[torch.Tensor]) -> None:
        for i, s in enumerate(scores):
            if s.dim() != 1:
                raise FrontierError(f"layer {i}: scores must be one vector per layer")
        self.full: tuple[int, ...] = tuple(int(s.numel()) for s in scores)
        # on the CPU whatever the scores' device: surgery moves kept indices once
        self.orders: tuple[torch.Tensor, ...] = tuple(
            torch.argsort(s.detach().float().cpu(), descending=True, stable=True) for s in scores
        )

    def select(self, plan: Plan) -> Selection:
        if plan.full != self.full:
            raise FrontierError(
                f"plan is for MLP widths {plan.full[:3]}..., the scores are for {self.full[:3]}..."
            )
        kept = tuple(
            order[:w].sort().values for order, w in zip(self.orders, plan.widths, strict=True)
        )
        return Selection(plan, kept)


def select(scores: Sequence[torch.Tensor], plan: Plan) -> Selection:
    """The top ``plan.widths[i]`` neurons of every layer ``i`` by score."""
    return Selector(scores).select(plan)
