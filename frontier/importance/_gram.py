"""Second moments (Gram matrices) of every down projection's input, for the refit.

Per layer the calibration pass accumulates ``E[x x^T]`` of ``x = [activation; 1]``, an
``(I+1) x (I+1)`` float64 matrix whose last row and column are the activation mean and 1
(the constant input that carries a bias). Each batch is multiplied on the model's device
in float32 (a few thousand tokens per product, the upper triangle only) and summed there
in float64. Only as many layers' sums as fit a memory budget are held at once (on the
CPU the host's, :mod:`frontier.memory`; on a GPU a share of its own): the calibration
text is run once per group of layers (:func:`gram_groups`), each pass starting from the
residual stream the pass before saved after its last layer and stopping after its own,
and each group's matrices go to the disk cache when its pass ends, a file per layer, read
back a layer at a time (``I^2`` x 8 bytes per layer and slice: 19 MB for SmolLM2's
1,536-wide MLPs; 642 MB for the 1.5B Qwen's 8,960; 1.6 GB for an 8B model's 14,336).

The calibration windows are split: the last ``held_windows`` ones are a held-out slice
whose Gram is kept apart, so the refit's regularisation can be chosen on text the fit
never saw (and never on search or report text).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from frontier._tensorfile import LayerFolder, LayerTensors


def held_windows(n_windows: int) -> int:
    """How many calibration windows are held out: one in eight, none for a single window."""
    return n_windows // 8 if n_windows >= 8 else (1 if n_windows >= 2 else 0)


@dataclass(frozen=True)
class GramStats:
    """Per layer: ``E[x x^T]`` for ``x = [activation; 1]`` on the fitting and held-out windows.

    ``fit`` and ``held`` are tuples of tensors in memory, or :class:`LayerTensors` that read
    one layer from the disk cache at each access (:meth:`on_disk`): then no more than the
    layers a caller holds at once are in memory."""

    fit: Sequence[torch.Tensor]
    held: Sequence[torch.Tensor]
    fit_tokens: int
    held_tokens: int

    @classmethod
    def on_disk(cls, folder: LayerFolder, layers: int) -> GramStats:
        """The Grams a calibration pass wrote to ``folder`` (every layer must be there)."""
        tokens = folder.read(0, "tokens").tolist()
        return cls(
            fit=LayerTensors(folder, "fit", layers),
            held=LayerTensors(folder, "held", layers),
            fit_tokens=int(tokens[0]),
            held_tokens=int(tokens[1]),
        )

    @property
    def lean(self) -> bool:
        """Whether the matrices are read from disk a layer at a time."""
        return isinstance(self.fit, LayerTensors)

    def _owned(self, part: Sequence[torch.Tensor], layer: int) -> torch.Tensor:
        t = part[layer]
        return t if isinstance(part, LayerTensors) else t.clone()

    def full(self, layer: int) -> torch.Tensor:
        """The second moment over every calibration token (fitting and held-out): a new
        tensor, made with no more than one other matrix beside it."""
        n_f, n_h = self.fit_tokens, self.held_tokens
        if n_h == 0:
            return self._owned(self.fit, layer)
        out = self._owned(self.fit, layer).mul_(n_f)
        out.add_(self._owned(self.held, layer).mul_(n_h))
        return out.div_(n_f + n_h)

    def diagonal(self, layer: int) -> torch.Tensor:
        """The diagonal of :meth:`full` (the same values), without reading the matrices
        where they are on disk (the calibration stores each diagonal beside them)."""
        n_f, n_h = self.fit_tokens, self.held_tokens
        if isinstance(self.fit, LayerTensors):
            file = self.fit.folder.file(layer)
            fit, held = file.read("fit_diag"), file.read("held_diag")
        else:
            fit, held = self.fit[layer].diagonal().clone(), self.held[layer].diagonal().clone()
        if n_h == 0:
            return fit
        return fit.mul_(n_f).add_(held.mul_(n_h)).div_(n_f + n_h)


def gram_blocks(width: int) -> int:
    """Column blocks of the upper-triangle product: one per 256 inputs, at most four
    (measured at SmolLM2's 1,537 inputs on 2,048 tokens, float32 on the CPU: 69 ms as one
    product, 47 ms in two blocks, 35 ms in four, 34 ms in eight)."""
    return max(1, min(4, width // 256))


class GramAccumulator:
    """A forward pre-hook adding each batch's ``x^T x`` to the fitting or held-out sum.

    Only the upper triangle is computed, in ``blocks`` column blocks (block ``b``'s rows
    times every column from ``b`` on: about half the work of the full product for four
    blocks and more); :meth:`result` mirrors it."""

    def __init__(
        self, width: int, device: torch.device | str = "cpu", *, blocks: int | None = None
    ) -> None:
        n = width + 1
        self.fit = torch.zeros(n, n, dtype=torch.float64, device=device)
        self.held = torch.zeros(n, n, dtype=torch.float64, device=device)
        self.fit_count = 0
        self.held_count = 0
        self.holding_out = False
        k = min(blocks or gram_blocks(width), n)
        edges = [round(i * n / k) for i in range(k + 1)]
        self.blocks = list(itertools.pairwise(edges))

    def __call__(self, _module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
        x = torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1)
        total = self.held if self.holding_out else self.fit
        for lo, hi in self.blocks:
            total[lo:hi, lo:] += (x[:, lo:hi].t() @ x[:, lo:]).double()
        if self.holding_out:
            self.held_count += x.shape[0]
        else:
            self.fit_count += x.shape[0]

    @staticmethod
    def _mirror(upper: torch.Tensor) -> torch.Tensor:
        """The symmetric matrix whose upper triangle (diagonal included) ``upper`` holds,
        made in place (one more matrix at a time)."""
        upper.triu_()
        return upper.add_(upper.triu(1).t())

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fitting and held-out second moments (the sums are used up: call once)."""
        fit = self._mirror(self.fit).div_(max(self.fit_count, 1)).cpu()
        self.fit = torch.empty(0)
        held = self._mirror(self.held).div_(max(self.held_count, 1)).cpu()
        self.held = torch.empty(0)
        return fit, held

    def state(self) -> dict[str, torch.Tensor]:
        """The running sums and counts, for a checkpoint (:meth:`restore`)."""
        counts = torch.tensor([self.fit_count, self.held_count])
        return {"fit": self.fit.cpu(), "held": self.held.cpu(), "counts": counts}

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.fit.copy_(state["fit"])
        self.held.copy_(state["held"])
        self.fit_count, self.held_count = (int(c) for c in state["counts"].tolist())


def gram_bytes(width: int) -> int:
    """Device bytes of one layer's sums (fitting and held-out, float64)."""
    return 2 * (width + 1) ** 2 * 8


def gram_groups(widths: list[int], budget: int | None) -> list[list[int]]:
    """Consecutive layers whose sums fit ``budget`` bytes together (at least one layer a
    group; None: all in one group)."""
    if budget is None:
        return [list(range(len(widths)))] if widths else []
    groups: list[list[int]] = []
    used = 0
    for i, width in enumerate(widths):
        need = gram_bytes(width)
        if not groups or used + need > budget:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += need
    return groups
