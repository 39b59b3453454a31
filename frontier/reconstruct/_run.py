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
from frontier.reconstruct._stream import (
    _advance,
    _check_additive,
    _embedded,
    _layer_calls,
    _outputs,
    _put,
    _read,
    _stream_targets,
)


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


@dataclass
class _StreamCost:
    """The CPU seconds spent outside the fits per layer (reading a layer's inputs and
    targets, carrying the stream through it), averaged over the layers so far."""

    #: what a layer costs after its read, as a multiple of the read (for the first layer's
    #: estimate): the pass after the fit, where there is one
    after_read: float
    seconds: float = 0.0
    layers: int = 0

    def add(self, seconds: float) -> None:
        self.seconds += seconds
        self.layers += 1

    def per_layer(self, *, first_read: float) -> float:
        """The average; before any layer is done, the first layer's read and what follows."""
        return self.seconds / self.layers if self.layers else (1 + self.after_read) * first_read


def fit_share(
    left: float, per_layer: float, *, read: float, layers_after: int, fits_left: int
) -> float:
    """The CPU seconds the current layer's fit may use: what is ``left`` of the budget,
    less the stream's cost still to pay (this layer's pass beyond its ``read``, and
    ``per_layer`` for each of the ``layers_after`` it), split over the ``fits_left`` fits
    (this one included)."""
    reserve = max(per_layer - read, 0.0) + per_layer * layers_after
    return max(left - reserve, 0.0) / max(fits_left, 1)


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
        # the unpruned model's stream, for the stream target (the embeddings are not pruned)
        dense = (list(train), list(held)) if config.target == "stream" else None
        say(
            f"reconstruct: {len(todo)} pruned MLPs of {len(handles)} layers, "
            f"{data.train.numel():,} calibration tokens, held-out {data.heldout.numel():,} "
            f"tokens, inputs from the {config.inputs} model, fitted to the "
            f"{'unpruned MLP output' if dense is None else 'unpruned layer output'}"
        )
        fits: list[LayerFit] = []
        modules: Modules = [{} for _ in handles]
        trained = 0
        clock = Clock(len(todo))
        last = len(layers) - 1 if config.inputs == "pruned" else max(todo, default=-1)
        # the pass after a fit: the whole layer, after a read that stopped at the MLP
        # (pruned inputs: about as much again), or that read two passes (stream target:
        # half as much again); none with dense inputs, whose read moved the stream on
        after = {"stream": 0.5, "pruned": 1.0, "dense": 0.0}
        stream = _StreamCost(after["stream" if dense is not None else config.inputs])
        for i, (layer, h) in enumerate(zip(layers, handles, strict=True)):
            t_layer = time.process_time()
            if i not in todo:
                if i <= last:
                    _advance(layer, calls[i], train, held, *(dense or ()))
                    stream.add(time.process_time() - t_layer)
                continue
            pruned = {n: h.get(n) for n in names}
            if dense is not None:
                if i == todo[0]:
                    _check_additive(layer, calls[i], h, adapter, train[0])
                x, y, xh, yh = _stream_targets(
                    layer, calls[i], h, adapter, (train, held), dense, originals[i], pruned
                )
            elif config.inputs == "dense":
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
            read = time.process_time() - t_layer
            share = None
            if config.cpu_minutes is not None:
                # the budget also pays for carrying the stream through this layer and the
                # ones after it: reserve that (from what the layers so far cost), and split
                # the rest over the fits still to run
                left = 60 * config.cpu_minutes - (time.process_time() - cpu0)
                share = fit_share(
                    left,
                    stream.per_layer(first_read=read),
                    read=read,
                    layers_after=last - i,
                    fits_left=len(todo) - len(fits),
                )
            t_fit = time.process_time()
            fit, done = _fit(h, adapter, pruned, (x, y, xh, yh), config, i, share, dtype)
            fit_cpu = time.process_time() - t_fit
            del x, y, xh, yh
            fits.append(fit)
            modules[i] = done
            trained += sum(p.numel() for m in done.values() for p in m.parameters())
            if config.inputs == "pruned":
                _advance(layer, calls[i], train, held)
            stream.add(time.process_time() - t_layer - fit_cpu)
            clock.advance()
            backed = f", lr {fit.lr:.2g} after {fit.attempts - 1} back-off(s)"
            say(
                f"reconstruct: layer {i + 1}/{len(handles)}: held-out error "
                f"{fit.before:.4f} -> {fit.after:.4f} ({fit.steps_run} steps, kept "
                f"{fit.kept_step}, {fit.stop_reason}, {fit.cpu_seconds:.0f} CPU-s"
                f"{backed if fit.attempts > 1 else ''}){clock.eta()}"
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
            backoffs=config.backoffs,
        )
    except BaseException:
        _put(h, pruned)
        raise
    for p in params:
        p.requires_grad_(False)
    done = {n: m.to(dtype=dtype) for n, m in work.items()}
    _put(h, done)
    return fit, done
