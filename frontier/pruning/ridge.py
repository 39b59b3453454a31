"""The refit's ridge strength: chosen per layer from :data:`ALPHAS` by the error of the
layer's output on the held-out calibration windows (never on search or report text),
fitted on the others, at a reference selection (the top :data:`REFERENCE_KEEP` of the
neurons by output energy, whatever the criterion, so the choice is a property of the model
and the calibration text, cached beside the Gram matrices).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch

from frontier._clock import Clock
from frontier.arch import MLPHandle
from frontier.arch.weights import down_matrix
from frontier.errors import FrontierError
from frontier.importance import GramStats
from frontier.pruning.refit import LayerRefit, setup_device

ALPHAS: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
DEFAULT_ALPHA = 1e-2  # used when the calibration has no held-out windows
REFERENCE_KEEP = 0.6  # alpha is chosen at this share of each layer's highest-energy neurons
LAMBDA_RULE = (
    "ridge lambda = alpha x mean diag(G); alpha per layer from {1e-4, 1e-3, 1e-2, 1e-1, 1}, "
    "the best reconstruction of the layer output on the held-out calibration windows when "
    "fitted on the others, at the top 60% of neurons by energy"
)


def reference_keep(handles: Sequence[MLPHandle], grams: GramStats) -> list[torch.Tensor]:
    """The selection alpha is chosen at: per layer, the top :data:`REFERENCE_KEEP` share of
    neurons by output energy (``E[a^2] ||down column||^2``), whatever the criterion, so the
    choice is a property of the model and the calibration text and is cached with them."""
    out = []
    for h in handles:
        w, _ = down_matrix(h.down_module, h.adapter.layout)
        energy = grams.diagonal(h.index)[:-1] * w.double().square().sum(0).cpu()
        n = max(1, round(REFERENCE_KEEP * energy.numel()))
        out.append(torch.argsort(energy, descending=True, stable=True)[:n].sort().values)
    return out


def choose_alphas(
    handles: Sequence[MLPHandle],
    grams: GramStats,
    alphas: Sequence[float] = ALPHAS,
    *,
    done: Sequence[Mapping[float, float]] = (),
    on_layer: Callable[[list[dict[float, float]]], None] | None = None,
    progress: Callable[[str], None] | None = None,
    proximal: bool = False,
) -> tuple[list[float], list[dict[float, float]]]:
    """Per layer, the alpha whose fit (on the fitting windows) best reproduces the layer's
    output on the held-out windows, and every candidate's relative error (for the
    ``proximal`` form of the refit when set: :class:`LayerRefit`).

    ``done``: the errors of the first layers, from a choice that was stopped (not
    computed again); ``on_layer`` gets every layer's errors so far as each finishes."""
    if grams.held_tokens == 0 or len(alphas) == 1:
        alpha = alphas[0] if len(alphas) == 1 else DEFAULT_ALPHA
        return [alpha] * len(handles), [{} for _ in handles]
    errors: list[dict[float, float]] = [dict(e) for e in done[: len(handles)]]
    clock = Clock(len(handles))
    clock.skip(len(errors))
    keeps = reference_keep(handles, grams)
    for h, keep in list(zip(handles, keeps, strict=True))[len(errors) :]:
        clock.advance()
        w, bias = down_matrix(h.down_module, h.adapter.layout)
        layer = LayerRefit(
            w, bias, grams.fit[h.index], alphas[0], device=setup_device(w), proximal=proximal
        )
        errs = layer.errors(keep, grams.held[h.index], alphas)
        if all(math.isinf(e) for e in errs.values()):
            raise FrontierError(
                f"layer {h.index}: the refit's ridge cannot be chosen, the calibration's Gram "
                f"matrix is singular at every strength ({grams.fit_tokens:,} fitting tokens "
                f"for {h.width:,} neurons): use more calibration tokens"
            )
        errors.append(errs)
        if on_layer is not None:
            on_layer(errors)
        if progress is not None:
            progress(f"refit ridge: layer {len(errors)}/{len(handles)}{clock.eta()}")
    chosen = [min(errs, key=lambda a: errs[a]) for errs in errors]
    return chosen, errors
