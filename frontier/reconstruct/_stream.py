"""The calibration windows' stream through the decoder, one layer at a time: each layer
called with the arguments the model itself gave it, the MLP's inputs and outputs read on
the way, and the stream target's inputs and targets.

Names are private to :mod:`frontier.reconstruct`; ``_run`` drives them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from frontier.arch import MLPAdapter, MLPHandle
from frontier.errors import FrontierError


class _Stop(Exception):
    """Ends a forward pass once a hook has what it came for."""


Call = tuple[tuple[Any, ...], dict[str, Any]]


def _layer_calls(model: nn.Module, layers: Sequence[nn.Module], ids: torch.Tensor) -> list[Call]:
    """Every decoder layer's arguments besides the hidden states, as the model passes them
    for one window (masks, position embeddings: per layer, as Gemma 3's differ)."""
    calls: list[Call] = []

    def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        rest = args[1:] if args else ()
        kw = {k: v for k, v in kwargs.items() if k != "hidden_states"}
        calls.append((rest, kw))
        if len(calls) == len(layers):
            raise _Stop

    hooks = [layer.register_forward_pre_hook(hook, with_kwargs=True) for layer in layers]
    try:
        _forward_until_stopped(model, ids)
    finally:
        for hk in hooks:
            hk.remove()
    if len(calls) != len(layers):
        raise FrontierError("reconstruct: the model did not call every decoder layer")
    return calls


def _forward_until_stopped(model: nn.Module, ids: torch.Tensor) -> None:
    """The model's forward pass on ``ids``, ended early where a hook raises ``_Stop``."""
    with torch.no_grad(), contextlib.suppress(_Stop):
        model(input_ids=ids, use_cache=False)


def _embedded(model: nn.Module, layers: Sequence[nn.Module], ids: torch.Tensor) -> torch.Tensor:
    """The first layer's hidden states for one window."""
    got: list[torch.Tensor] = []

    def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        got.append(args[0] if args else kwargs["hidden_states"])
        raise _Stop

    hk = layers[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        _forward_until_stopped(model, ids)
    finally:
        hk.remove()
    return got[0]


def _call(layer: nn.Module, call: Call, hidden: torch.Tensor) -> torch.Tensor:
    args, kwargs = call
    out = layer(hidden, *args, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def _advance(layer: nn.Module, call: Call, *streams: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for stream in streams:
            for w, hidden in enumerate(stream):
                stream[w] = _call(layer, call, hidden)


def _read(
    layer: nn.Module,
    call: Call,
    h: MLPHandle,
    adapter: MLPAdapter,
    stream: list[torch.Tensor],
    *,
    advance: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The MLP's inputs (float32 rows) over ``stream``'s windows, and with ``advance`` its
    outputs too and the stream moved on through the layer; without, each pass stops at
    the MLP."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []

    def take_in(_m: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0]
        # copies: a family may add to them in place later in the layer (Falcon does)
        xs.append(x.reshape(-1, x.shape[-1]).float().clone())
        if not advance:
            raise _Stop

    def take_out(_m: nn.Module, _args: tuple[Any, ...], out: torch.Tensor) -> None:
        ys.append(out.reshape(-1, out.shape[-1]).float().clone())

    hooks = [h.get(adapter.up[0]).register_forward_pre_hook(take_in)]
    if advance:
        hooks.append(h.down_module.register_forward_hook(take_out))
    try:
        with torch.no_grad():
            for w, hidden in enumerate(stream):
                try:
                    out = _call(layer, call, hidden)
                except _Stop:
                    continue
                stream[w] = out
    finally:
        for hk in hooks:
            hk.remove()
    if len(xs) != len(stream) or (advance and len(ys) != len(stream)):
        raise FrontierError(f"layer {h.index}: its MLP did not run once per window")
    return torch.cat(xs), (torch.cat(ys) if ys else torch.empty(0))


def _rows(stream: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1, t.shape[-1]).float() for t in stream])


def _stream_targets(
    layer: nn.Module,
    call: Call,
    h: MLPHandle,
    adapter: MLPAdapter,
    pruned_streams: tuple[list[torch.Tensor], list[torch.Tensor]],
    dense_streams: tuple[list[torch.Tensor], list[torch.Tensor]],
    original: dict[str, nn.Module],
    pruned: dict[str, nn.Module],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The stream target's (inputs, targets) for training and held-out windows: the MLP's
    inputs on the pruned stream, and the unpruned layer's output less the pruned layer's
    output without its MLP. The dense streams move on through the unpruned layer; the
    pruned ones are left where they were (they move on once the MLP is fitted)."""
    out: list[torch.Tensor] = []
    for pstream, dstream in zip(pruned_streams, dense_streams, strict=True):
        saved = list(pstream)
        x, m = _read(layer, call, h, adapter, pstream, advance=True)
        residual = _rows(pstream) - m  # the layer's output without its MLP (additive)
        pstream[:] = saved
        _put(h, original)
        try:
            _advance(layer, call, dstream)
        finally:
            _put(h, pruned)
        out += [x, _rows(dstream) - residual]
    return out[0], out[1], out[2], out[3]


def _check_additive(
    layer: nn.Module, call: Call, h: MLPHandle, adapter: MLPAdapter, hidden: torch.Tensor
) -> None:
    """Refuse the stream target where the layer does not add its MLP's output to the
    stream as it is (Gemma 2 and 3 normalise it first): on one window, the layer's output
    less its MLP's output must equal the layer's output with the MLP's output zeroed."""
    window = [hidden]  # _read moves it on through the layer: the layer's output
    _, m = _read(layer, call, h, adapter, window, advance=True)
    full = window[0].reshape(-1, hidden.shape[-1]).float()
    hk = h.down_module.register_forward_hook(lambda _m, _a, o: torch.zeros_like(o))
    try:
        with torch.no_grad():
            zeroed = _call(layer, call, hidden).reshape(-1, hidden.shape[-1]).float()
    finally:
        hk.remove()
    gap = float((full - m - zeroed).abs().max())
    scale = float(full.abs().max()) or 1.0
    tol = 1e-4 if hidden.dtype == torch.float32 else 2e-2
    if gap > tol * scale:
        raise FrontierError(
            "reconstruct target 'stream' needs a family that adds its MLP's output to the "
            f"residual stream unchanged; layer {h.index} does not (off by {gap / scale:.1e} "
            "of its output): use target 'mlp'"
        )


def _outputs(adapter: MLPAdapter, h: MLPHandle, x: torch.Tensor) -> torch.Tensor:
    """The MLP's outputs (float32 rows) for inputs ``x``, with the projections ``h`` holds."""
    dtype = next(h.down_module.parameters()).dtype
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], 4096):
            out.append(adapter.mlp_forward(h, x[start : start + 4096].to(dtype)).float())
    return torch.cat(out)


def _put(h: MLPHandle, modules: dict[str, nn.Module]) -> None:
    for name, module in modules.items():
        h.set(name, module)
