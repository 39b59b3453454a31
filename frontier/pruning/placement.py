"""Where the refit's factors live and how a trial reads them: :class:`Refitter` sets up
every layer's :class:`~frontier.pruning.refit.LayerRefit` (float64, on the model's device
where one layer's set-up fits there, else on the host) and keeps its float32 factors on
the device while they fit half of its free memory, else in (pinned) host memory within
the host budget, else on disk, read a block at a time by each trial. Every tier runs the
same arithmetic, so the weights are the same wherever the factors are. A set-up that
was stopped resumes at the first layer it had not saved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from frontier._clock import Clock
from frontier._tensorfile import LayerFolder
from frontier.arch import MLPHandle, WeightLayout
from frontier.arch.weights import down_matrix
from frontier.errors import FrontierError
from frontier.importance import GramStats
from frontier.pruning.prefetch import ReadAhead
from frontier.pruning.refit import FACTOR_FORMAT, DownWeights, LayerRefit, setup_device
from frontier.pruning.ridge import LAMBDA_RULE, choose_alphas


def _saved(
    folder: LayerFolder, layer: int, order: torch.Tensor, alpha: float, compact: bool
) -> bool:
    """Whether ``folder`` holds this layer set up for this order, alpha and layout."""
    if not folder.has(layer):
        return False
    try:
        f = folder.file(layer)
        meta = f.read("meta").tolist()
        return (
            len(meta) == 7
            and meta[6] == FACTOR_FORMAT
            and meta[3] == alpha
            and bool(meta[2]) == compact
            and torch.equal(f.read("order"), order.cpu().long())
        )
    except (OSError, KeyError, ValueError):
        return False


class Refitter:
    """Refits every layer of one model from its calibration Grams, for prefixes of one
    ranking of the neurons per layer (see :meth:`LayerRefit.prefix`)."""

    def __init__(
        self, layers: Sequence[LayerRefit], *, errors: Sequence[dict[float, float]] = ()
    ) -> None:
        self.layers = list(layers)
        self.errors = list(errors)

    @property
    def alphas(self) -> list[float]:
        return [layer.alpha for layer in self.layers]

    @property
    def lambdas(self) -> list[float]:
        return [layer.lam for layer in self.layers]

    @classmethod
    def build(
        cls,
        handles: Sequence[MLPHandle],
        grams: GramStats,
        orders: Sequence[torch.Tensor],
        *,
        alphas: Sequence[float] | None = None,
        errors: Sequence[dict[float, float]] = (),
        budget: int | None = None,
        compact: bool | None = None,
        spill: LayerFolder | None = None,
        host_budget: int | None = None,
        progress: Callable[[str], None] | None = None,
        proximal: bool = False,
    ) -> Refitter:
        """Set up the refit on every calibration token; ``alphas`` per layer (chosen on
        the held-out windows by :func:`choose_alphas` when not given).

        The set-up runs on the model's device, one layer at a time. Each layer's factors
        stay on the device while all so far fit ``budget`` bytes (default: on a GPU half
        its free memory now, on the CPU all of them); ``compact`` factors (default: on a
        GPU) take a third less memory in pairs: each second compact layer keeps its ``P``
        in the layer's before it (:class:`LayerRefit`, :meth:`LayerRefit.share_p`).

        The others, with a ``spill`` folder (the lean path), are kept on disk there and
        read a block at a time by each trial, except, on a GPU, while they fit
        ``host_budget`` bytes of pinned host memory; without one, they all go to host
        memory (pinned on a GPU). The same arithmetic runs on every path, so the weights
        are the same. With ``spill`` every layer is written there as it is set up, and a
        set-up that was stopped reads the layers it finished instead of redoing them."""
        if alphas is None:
            alphas, errors = choose_alphas(handles, grams, proximal=proximal)
        layers: list[LayerRefit] = []
        used = host_used = 0
        holder: LayerRefit | None = None  # the last layer whose P could hold another's
        clock = Clock(len(handles))
        for i, (h, order, alpha) in enumerate(zip(handles, orders, alphas, strict=True)):
            w, bias = down_matrix(h.down_module, h.adapter.layout)
            gpu = w.device.type == "cuda"
            small = gpu if compact is None else compact
            if spill is not None and _saved(spill, i, order, alpha, small):
                layer = LayerRefit.load(spill, i, in_memory=False)
                clock.skip(1)
            else:
                clock.advance()
                layer = LayerRefit(
                    w,
                    bias,
                    grams.full(h.index),
                    alpha,
                    order,
                    device=setup_device(w),
                    compact=small,
                    proximal=proximal,
                )
                if spill is not None:
                    layer.save(spill, i)
            if budget is None and gpu:
                budget = torch.cuda.mem_get_info(w.device)[0] // 2
            need = layer.factor_bytes()
            on_device = budget is None or used + need <= budget
            in_host = not on_device and (
                spill is None or (gpu and (host_budget is None or host_used + need <= host_budget))
            )
            if spill is not None and layer.on_disk != (not (on_device or in_host)):
                # a layer saved before, or one that must go: read back as the tier needs
                layer = LayerRefit.load(spill, i, in_memory=on_device or in_host)
            if not layer.on_disk:
                shared = holder is not None and holder.share_p(layer)
                holder = None if shared else layer
                need = layer.factor_bytes()
            layer.place(w.device, resident=on_device)
            used += need if on_device else 0
            host_used += need if in_host else 0
            layers.append(layer)
            if progress is not None:
                progress(f"refit set-up: layer {i + 1}/{len(handles)}{clock.eta()}")
        return cls(layers, errors=errors)

    def placement(self) -> dict[str, Any]:
        """Where the factors live (for protocols): device, layers resident there, in host
        memory and on disk (read a block at a time by each trial), bytes in all."""
        device = str(self.layers[0].device) if self.layers else "cpu"
        resident = sum(layer.resident for layer in self.layers)
        disk = sum(layer.on_disk for layer in self.layers)
        return {
            "device": device,
            "resident_layers": resident,
            "host_layers": len(self.layers) - resident - disk,
            "disk_layers": disk,
            "factor_bytes": sum(layer.factor_bytes() for layer in self.layers),
        }

    def weights(
        self,
        kept: Sequence[torch.Tensor],
        downs: Sequence[Any],
        layout: WeightLayout,
        *,
        prefetch: bool = True,
    ) -> list[DownWeights | None]:
        """New down weights for every pruned layer (None where a layer keeps every neuron).

        The blocks of the layers on disk are read ahead, one layer beyond the one being
        refitted, in a background thread (:class:`~frontier.pruning.prefetch.ReadAhead`):
        the same bytes, the same weights as reading each when its turn comes
        (``prefetch=False``)."""
        pairs = list(zip(self.layers, kept, downs, strict=True))
        todo = [
            (i, layer, keep.numel())
            for i, (layer, keep, _) in enumerate(pairs)
            if prefetch and layer.on_disk and keep.numel() != layer.width
        ]
        out: list[DownWeights | None] = []
        with ReadAhead(todo) as ahead:
            for i, (layer, keep, down) in enumerate(pairs):
                if keep.numel() == layer.width:
                    out.append(None)
                    continue
                # a layer read ahead: its blocks are let go as soon as it is refitted
                refit = ahead.take(i) if prefetch and layer.on_disk else layer
                out.append(self._weight(refit, keep, down, layout))
                del refit
        return out

    @staticmethod
    def _weight(
        layer: LayerRefit, keep: torch.Tensor, down: Any, layout: WeightLayout
    ) -> DownWeights:
        """One pruned layer's new down weight (``layer`` may be one read ahead)."""
        got, cols, bias = layer.prefix(keep.numel())
        if not torch.equal(got, keep.cpu()):
            raise FrontierError("the refit needs the kept neurons its ranking chooses")
        weight = cols.t() if layout is WeightLayout.CONV1D else cols
        dtype, device = down.weight.dtype, down.weight.device
        return DownWeights(
            weight.to(dtype=dtype, device=device).contiguous(),
            None if bias is None else bias.to(dtype=dtype, device=device),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "rule": LAMBDA_RULE,
            "alpha": self.alphas,
            "lambda": self.lambdas,
            "heldout_error": [{str(k): v for k, v in e.items()} for e in self.errors],
        }
