"""Reconstruct every pruned MLP of a model, layer by layer.

The calibration windows are carried through the decoder one layer at a time (the hidden
states at the current layer's input, for the training and the held-out windows), so
memory holds one layer's activations, never the whole model's. Each decoder layer is
called with the arguments the model itself gave it (captured once, on one window), so no
family's position embeddings or masks are rebuilt here.

For layer ``i``: its MLP's inputs are read (from the pruned stream, or with ``inputs =
"dense"`` from the unpruned one); the target is the unpruned MLP's output on them; float32
copies of the pruned projections are fitted (:func:`fit_layer`), cast back to the model's
dtype and swapped in; the stream moves on through layer ``i``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from frontier._clock import Clock
from frontier.arch import MLPAdapter, MLPHandle
from frontier.errors import FrontierError
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner, Selection
from frontier.reconstruct._config import ReconstructConfig
from frontier.reconstruct._fit import LayerFit, fit_layer


class Windows(Protocol):
    """Calibration token windows for training and for the held-out errors, from disjoint
    documents (:func:`frontier.repair.repair_data` makes them)."""

    @property
    def train(self) -> torch.Tensor: ...  # [n, seq_len] int64

    @property
    def heldout(self) -> torch.Tensor: ...  # [m, seq_len] int64

    def describe(self) -> dict[str, Any]: ...


Modules = list[dict[str, nn.Module]]
Progress = Callable[[str], None]


@dataclass
class ReconstructResult:
    """What a reconstruction did. ``modules``: per layer, the reconstructed projections
    (empty for a layer kept whole), as they are in the model now."""

    config: ReconstructConfig
    data: dict[str, Any]
    layers: list[LayerFit]
    cpu_seconds: float
    wall_seconds: float
    device: str
    precision: str
    trained_parameters: int
    modules: Modules = field(default_factory=list, repr=False)

    @property
    def heldout_before(self) -> float:
        """Mean over the reconstructed layers of the held-out relative error before."""
        return _mean([f.before for f in self.layers])

    @property
    def heldout_after(self) -> float:
        return _mean([f.after for f in self.layers])


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def reconstruct(
    engine: Pruner | PruningOperator,
    plan: Plan | Selection,
    data: Windows,
    config: ReconstructConfig,
    *,
    progress: Progress | None = None,
) -> ReconstructResult:
    """Apply ``plan`` with ``engine`` (an operator's refit included) and reconstruct every
    pruned MLP. The engine must not have a plan applied; on return it has (the model is
    the reconstructed pruned model) and ``engine.restore()`` gives the unpruned model back
    bit-identically."""
    if engine.applied:
        raise FrontierError("reconstruct applies the plan itself; restore the pruner first")
    pruner = engine.pruner if isinstance(engine, PruningOperator) else engine
    ad = pruner.adapter
    originals = [{n: h.get(n) for n in (*ad.up, ad.down)} for h in pruner.handles]
    engine.apply(plan)
    return reconstruct_modules(pruner.model, ad, originals, data, config, progress=progress)


class _Stop(Exception):
    """Ends a forward pass once a hook has what it came for."""


def reconstruct_modules(
    model: nn.Module,
    adapter: MLPAdapter,
    originals: Modules,
    data: Windows,
    config: ReconstructConfig,
    *,
    progress: Progress | None = None,
) -> ReconstructResult:
    """Reconstruct, in place, the MLPs of ``model`` that differ from ``originals`` (the
    unpruned projections, per layer). ``model`` holds the pruned projections."""
    say = progress or (lambda _m: None)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    handles = adapter.handles(model)
    layers = adapter.layer_list(model)
    names = (*adapter.up, adapter.down)
    todo = [i for i, h in enumerate(handles) if any(h.get(n) is not originals[i][n] for n in names)]
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()
    try:
        calls = _layer_calls(model, layers, data.train[:1].to(device))
        train = [_embedded(model, layers, w.view(1, -1).to(device)) for w in data.train]
        held = [_embedded(model, layers, w.view(1, -1).to(device)) for w in data.heldout]
        say(
            f"reconstruct: {len(todo)} pruned MLPs of {len(handles)} layers, "
            f"{data.train.numel():,} calibration tokens, held-out {data.heldout.numel():,} "
            f"tokens, inputs from the {config.inputs} model"
        )
        fits: list[LayerFit] = []
        modules: Modules = [{} for _ in handles]
        trained = 0
        clock = Clock(len(todo))
        for i, (layer, h) in enumerate(zip(layers, handles, strict=True)):
            if i not in todo:
                if config.inputs == "pruned" or i < max(todo, default=-1):
                    _advance(layer, calls[i], train, held)
                continue
            pruned = {n: h.get(n) for n in names}
            if config.inputs == "dense":
                _put(h, originals[i])
                x, y = _read(layer, calls[i], h, adapter, train, advance=True)
                xh, yh = _read(layer, calls[i], h, adapter, held, advance=True)
                _put(h, pruned)
            else:
                x, _ = _read(layer, calls[i], h, adapter, train, advance=False)
                xh, _ = _read(layer, calls[i], h, adapter, held, advance=False)
                _put(h, originals[i])
                y, yh = _outputs(adapter, h, x), _outputs(adapter, h, xh)
                _put(h, pruned)
            share = None
            if config.cpu_minutes is not None:
                left = 60 * config.cpu_minutes - (time.process_time() - cpu0)
                share = max(left, 0.0) / (len(todo) - len(fits))
            fit, done = _fit(h, adapter, pruned, (x, y, xh, yh), config, i, share, dtype)
            del x, y, xh, yh
            fits.append(fit)
            modules[i] = done
            trained += sum(p.numel() for m in done.values() for p in m.parameters())
            if config.inputs == "pruned":
                _advance(layer, calls[i], train, held)
            clock.advance()
            say(
                f"reconstruct: layer {i + 1}/{len(handles)}: held-out error "
                f"{fit.before:.4f} -> {fit.after:.4f} ({fit.steps_run} steps, kept "
                f"{fit.kept_step}, {fit.stop_reason}, {fit.cpu_seconds:.0f} CPU-s){clock.eta()}"
            )
    finally:
        model.train(was_training)
    cuda = device.type == "cuda"
    return ReconstructResult(
        config=config,
        data=data.describe(),
        layers=fits,
        cpu_seconds=time.process_time() - cpu0,
        wall_seconds=time.perf_counter() - wall0,
        device=str(device),
        precision=f"{str(dtype).removeprefix('torch.')} layer passes, float32 fit"
        + (" on the GPU" if cuda else ""),
        trained_parameters=trained,
        modules=modules,
    )


# -- the stream through the decoder ------------------------------------------------------
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
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)
    except _Stop:
        pass
    finally:
        for hk in hooks:
            hk.remove()
    if len(calls) != len(layers):
        raise FrontierError("reconstruct: the model did not call every decoder layer")
    return calls


def _embedded(model: nn.Module, layers: Sequence[nn.Module], ids: torch.Tensor) -> torch.Tensor:
    """The first layer's hidden states for one window."""
    got: list[torch.Tensor] = []

    def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        got.append(args[0] if args else kwargs["hidden_states"])
        raise _Stop

    hk = layers[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)
    except _Stop:
        pass
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


def _fit(
    h: MLPHandle,
    adapter: MLPAdapter,
    pruned: dict[str, nn.Module],
    tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    config: ReconstructConfig,
    index: int,
    cpu_seconds: float | None,
    dtype: torch.dtype,
) -> tuple[LayerFit, dict[str, nn.Module]]:
    """Fit float32 copies of the pruned projections (never the pruned modules themselves:
    a cut may share a bias with the unpruned module), then swap in the fitted ones, cast
    back to the model's dtype."""
    work = {n: copy.deepcopy(m).float() for n, m in pruned.items()}
    params = [p for m in work.values() for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    _put(h, work)
    try:
        fit = fit_layer(
            lambda x: adapter.mlp_forward(h, x),
            params,
            *tensors,
            steps=config.steps,
            batch_tokens=config.batch_tokens,
            lr=config.lr,
            eval_every=config.eval_every,
            patience=config.patience,
            seed=config.seed + index,
            cpu_seconds=cpu_seconds,
            layer=index,
        )
    except BaseException:
        _put(h, pruned)
        raise
    for p in params:
        p.requires_grad_(False)
    done = {n: m.to(dtype=dtype) for n, m in work.items()}
    _put(h, done)
    return fit, done
