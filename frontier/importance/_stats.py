"""Activation statistics at every down projection's input, from one calibration pass."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from frontier._clock import Clock
from frontier._tensorfile import LayerFolder, TensorFile, write_tensors
from frontier.arch import MLPAdapter
from frontier.importance._gram import GramAccumulator, GramStats, gram_groups, held_windows


@dataclass(frozen=True)
class ActivationStats:
    """Per layer, per neuron: mean, mean |x| and variance of the activation feeding down,
    and, when gathered, the Gram matrices of the same activations (:class:`GramStats`).

    Accumulated in float64 over ``tokens`` calibration tokens.
    """

    mean: tuple[torch.Tensor, ...]
    abs_mean: tuple[torch.Tensor, ...]
    var: tuple[torch.Tensor, ...]
    tokens: int
    # Gram matrices of the same pass, when gathered (cached in a file of their own)
    gram: GramStats | None = field(default=None, compare=False)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {"tokens": torch.tensor([self.tokens])}
        for i, (m, a, v) in enumerate(zip(self.mean, self.abs_mean, self.var, strict=True)):
            out[f"mean.{i}"], out[f"abs_mean.{i}"], out[f"var.{i}"] = m, a, v
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> ActivationStats:
        n = sum(1 for k in tensors if k.startswith("mean."))
        return cls(
            mean=tuple(tensors[f"mean.{i}"] for i in range(n)),
            abs_mean=tuple(tensors[f"abs_mean.{i}"] for i in range(n)),
            var=tuple(tensors[f"var.{i}"] for i in range(n)),
            tokens=int(tensors["tokens"][0]),
        )


class _Accumulator:
    def __init__(self, width: int) -> None:
        self.sum = torch.zeros(width, dtype=torch.float64)
        self.sumsq = torch.zeros(width, dtype=torch.float64)
        self.sum_abs = torch.zeros(width, dtype=torch.float64)
        self.count = 0

    def __call__(self, _module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0].detach().reshape(-1, args[0].shape[-1]).to(torch.float64)
        self.sum += x.sum(0).cpu()
        self.sumsq += (x * x).sum(0).cpu()
        self.sum_abs += x.abs().sum(0).cpu()
        self.count += x.shape[0]

    def state(self) -> dict[str, torch.Tensor]:
        return {
            "sum": self.sum,
            "sumsq": self.sumsq,
            "sum_abs": self.sum_abs,
            "count": torch.tensor([self.count]),
        }

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.sum, self.sumsq, self.sum_abs = state["sum"], state["sumsq"], state["sum_abs"]
        self.count = int(state["count"][0])


def _finish(accs: list[_Accumulator]) -> ActivationStats:
    means, abs_means, vars_ = [], [], []
    for a in accs:
        count = max(a.count, 1)
        mean = a.sum / count
        means.append(mean)
        abs_means.append(a.sum_abs / count)
        vars_.append((a.sumsq / count - mean * mean).clamp_min(0.0))
    return ActivationStats(tuple(means), tuple(abs_means), tuple(vars_), accs[0].count)


@torch.no_grad()  # not inference_mode: the stats must stay usable with autograd tensors
def collect_stats(
    model: nn.Module, adapter: MLPAdapter, ids: torch.Tensor, *, batch_size: int = 4
) -> ActivationStats:
    """Run ``ids`` ([n, seq_len]) through the decoder stack, skipping the LM head."""
    return calibration_pass(model, adapter, ids, batch_size=batch_size, grams=False)[0]


GPU_GRAM_BUDGET = 16 * 2**30  # at most this much GPU memory for Gram sums at once
CHECKPOINT_SECONDS = 300.0  # a group's running sums are saved this often (lean path)


class _StopPass(Exception):
    """Raised after the last layer a pass needs: the rest of the model is not run."""


def _stop(_module: nn.Module, _args: tuple[Any, ...], _out: Any) -> None:
    raise _StopPass


class _Boundary:
    """The residual stream after decoder layer ``layer``, per batch, in host memory: the
    next group's pass reads it there instead of running the layers up to ``layer`` again
    (the same inputs, so the same sums).

    :meth:`hook` records a layer's output (then stops the pass, with ``stop``);
    :meth:`replay` makes layers ``0 .. layer`` return, without computing anything, their
    input and, for ``layer``, the recorded output, shaped as that layer returns it (the
    tensor, or a tuple whose other items are None; any other output is not replayed)."""

    def __init__(self, decoder: list[nn.Module], layer: int, *, stop: bool) -> None:
        self.decoder, self.layer, self.stop = decoder, layer, stop
        self.batch = 0
        self.outputs: dict[int, torch.Tensor] = {}
        self.tail: int | None = None  # None: a bare tensor; else a tuple of 1 + tail Nones
        self.replayable = True

    def hook(self) -> Any:
        def record(_module: nn.Module, _args: tuple[Any, ...], output: Any) -> None:
            if isinstance(output, tuple):
                self.tail = len(output) - 1
                self.replayable &= all(x is None for x in output[1:])
                hidden = output[0]
            else:
                hidden = output
            self.outputs[self.batch] = hidden.detach().to("cpu", copy=True)
            if self.stop:
                raise _StopPass

        return self.decoder[self.layer].register_forward_hook(record)

    def _shaped(self, hidden: torch.Tensor) -> Any:
        return hidden if self.tail is None else (hidden, *([None] * self.tail))

    def replay(self) -> list[Any]:
        """Install the replay on layers ``0 .. layer``; returns handles whose ``remove``
        undoes it (none where the output cannot be replayed)."""
        if not self.replayable:
            return []
        out = []
        for j in range(self.layer + 1):
            module = self.decoder[j]
            device = next(module.parameters()).device

            def forward(
                *args: Any, _last: bool = j == self.layer, _to: torch.device = device, **kwargs: Any
            ) -> Any:
                if _last:  # each batch is read once: let it go (the next boundary fills up)
                    return self._shaped(self.outputs.pop(self.batch).to(_to))
                return self._shaped(args[0] if args else kwargs["hidden_states"])

            out.append(_Patched(module, forward))
        return out


class _Patched:
    """A module whose ``forward`` is replaced until :meth:`remove` (the one it had as an
    attribute, an accelerate hook's, is put back)."""

    def __init__(self, module: nn.Module, forward: Callable[..., Any]) -> None:
        self.module, self.had = module, module.__dict__.get("forward")
        module.forward = forward

    def remove(self) -> None:
        if self.had is None:
            del self.module.forward
        else:
            self.module.forward = self.had


@torch.no_grad()
def calibration_pass(
    model: nn.Module,
    adapter: MLPAdapter,
    ids: torch.Tensor,
    *,
    batch_size: int = 4,
    grams: bool = True,
    progress: Callable[[str], None] | None = None,
    gram_budget: int | None = None,
    store: LayerFolder | None = None,
    stats: ActivationStats | None = None,
    on_stats: Callable[[ActivationStats], None] | None = None,
    checkpoint_seconds: float | None = None,
) -> tuple[ActivationStats, GramStats | None]:
    """One pass over ``ids``: activation statistics over every window and, with ``grams``,
    the Gram matrices of the fitting windows and of the held-out last windows apart.

    The Grams are summed on the model's device, for as many layers at a time as fit
    ``gram_budget`` bytes (default: all of them on the CPU; on a GPU 40% of its free
    memory, at most :data:`GPU_GRAM_BUDGET`). Where that is not every layer, the text is
    run again for each further group of layers: from the residual stream the pass before
    saved after its last layer (:class:`_Boundary`; the layers before are not run again)
    up to the group's last layer only.

    With a ``store`` (the lean path) each group's Grams go to disk as the group ends and
    are let go; layers already there are not gathered again; every
    ``checkpoint_seconds`` (default :data:`CHECKPOINT_SECONDS`) the group's running sums
    are saved beside them
    (``partial.bin``), and a pass that was stopped resumes from there, with the same
    sums as one that was not. The Grams returned then read one layer from disk at a
    time. ``stats`` already gathered are not gathered again; ``on_stats`` hears them as
    soon as they are complete. ``progress`` gets a line, with an estimate of the time
    left, about every tenth of each pass."""
    handles = adapter.handles(model)
    device = next(model.parameters()).device
    if checkpoint_seconds is None:
        checkpoint_seconds = CHECKPOINT_SECONDS
    if grams and gram_budget is None and device.type == "cuda":
        gram_budget = min(int(torch.cuda.mem_get_info(device)[0] * 0.4), GPU_GRAM_BUDGET)
    todo = [i for i in range(len(handles)) if store is None or not store.has(i)] if grams else []
    groups = gram_groups([handles[i].width for i in todo], gram_budget)
    groups = [[todo[j] for j in group] for group in groups]
    if stats is None and not groups:
        groups = [[]]  # the statistics alone: one pass
    n = ids.shape[0]
    split = n - (held_windows(n) if grams else 0)
    batches = [(s, min(s + batch_size, split)) for s in range(0, split, batch_size)]
    batches += [(s, min(s + batch_size, n)) for s in range(split, n, batch_size)]
    backbone = adapter.backbone(model)
    layers = len(handles)
    # work of each group's pass, in whole-model passes, for the estimate of time left: a
    # pass after the first starts from the residual stream the one before saved (_Boundary)
    work = [
        1.0 if stats is None else (grp[-1] + 1) / layers if g == 0 else len(grp) / layers
        for g, grp in enumerate(groups)
    ]
    clock = Clock(sum(work) * len(batches))
    accs: list[_Accumulator] = []
    gram_out: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    every = max(1, len(batches) // 10)
    previous: _Boundary | None = None
    boundary: _Boundary | None = None
    for g, group in enumerate(groups):
        collect = stats is None
        accs = [_Accumulator(h.width) for h in handles] if collect else []
        hooks = [
            h.down_module.register_forward_pre_hook(a) for h, a in zip(handles, accs, strict=False)
        ]
        decoder = adapter.layer_list(model)
        if group and g + 1 < len(groups):  # the next group's pass starts after this layer
            boundary = _Boundary(decoder, group[-1], stop=not collect)
            hooks.append(boundary.hook())
        elif not collect and group:  # later groups stop after their last layer
            hooks.append(decoder[group[-1]].register_forward_hook(_stop))
        if group and previous is not None and previous.layer == group[0] - 1:
            hooks += previous.replay()  # the layers before this group are not run again
        grams_acc = {i: GramAccumulator(handles[i].width, device) for i in group}
        for i, acc in grams_acc.items():
            hooks.append(handles[i].down_module.register_forward_pre_hook(acc))
        done = _resume(store, group, collect, grams_acc, accs) if store is not None else 0
        clock.skip(done * work[g])
        label = f" (layers {group[0]}-{group[-1]})" if len(groups) > 1 else ""
        saved = time.monotonic()
        try:
            for b in range(done, len(batches)):
                start, end = batches[b]
                for acc in grams_acc.values():
                    acc.holding_out = start >= split
                for at in (boundary, previous):
                    if at is not None:
                        at.batch = b
                with contextlib.suppress(_StopPass):
                    backbone(input_ids=ids[start:end].to(device), use_cache=False)
                clock.advance(work[g])
                if progress is not None and ((b + 1) % every == 0 or b + 1 == len(batches)):
                    progress(
                        f"calibration pass{label}: {end * ids.shape[1]:,}/{ids.numel():,} "
                        f"tokens{clock.eta()}"
                    )
                last = b + 1 == len(batches)
                if store is not None and not last and time.monotonic() - saved > checkpoint_seconds:
                    _save_partial(store, group, b + 1, grams_acc, accs)
                    saved = time.monotonic()
        finally:
            for hook in hooks:
                hook.remove()
        # the boundary saved in this pass serves the next one (complete only without a
        # resumed start: a pass resumed part-way did not see its first batches)
        previous, boundary = (boundary if done == 0 else None), None
        if collect:
            stats = _finish(accs)
            if on_stats is not None:
                on_stats(stats)
        for i in group:
            fit, held = grams_acc.pop(i).result()
            if store is None:
                gram_out[i] = (fit, held)
                continue
            tokens = torch.tensor([split * ids.shape[1], (n - split) * ids.shape[1]])
            diagonals = {"fit_diag": fit.diagonal().clone(), "held_diag": held.diagonal().clone()}
            store.write(i, {"fit": fit, "held": held, "tokens": tokens, **diagonals})
            del fit, held
        if store is not None:
            store.partial.unlink(missing_ok=True)
    assert stats is not None
    if not grams:
        return stats, None
    if store is not None:
        gram = GramStats.on_disk(store, layers)
    else:
        gram = GramStats(
            fit=tuple(gram_out[i][0] for i in range(layers)),
            held=tuple(gram_out[i][1] for i in range(layers)),
            fit_tokens=split * ids.shape[1],
            held_tokens=(n - split) * ids.shape[1],
        )
    return dataclasses.replace(stats, gram=gram), gram


def _save_partial(
    store: LayerFolder,
    group: list[int],
    batches: int,
    grams: dict[int, GramAccumulator],
    accs: list[_Accumulator],
) -> None:
    """The group's running sums after ``batches`` batches, so a stopped pass resumes."""
    out: dict[str, torch.Tensor] = {
        "group": torch.tensor(group, dtype=torch.int64),
        "batches": torch.tensor([batches]),
    }
    for i, acc in grams.items():
        out.update({f"gram.{i}.{k}": v for k, v in acc.state().items()})
    for i, a in enumerate(accs):
        out.update({f"stats.{i}.{k}": v for k, v in a.state().items()})
    write_tensors(store.partial, out)


def _resume(
    store: LayerFolder,
    group: list[int],
    collect: bool,
    grams: dict[int, GramAccumulator],
    accs: list[_Accumulator],
) -> int:
    """Batches an earlier run of this group finished (its sums restored), else 0."""
    if not store.partial.is_file():
        return 0
    try:
        f = TensorFile(store.partial)
        names = set(f.names)
        if f.read("group").tolist() != group or ("stats.0.sum" in names) != collect:
            return 0
        for i, acc in grams.items():
            acc.restore({k: f.read(f"gram.{i}.{k}") for k in ("fit", "held", "counts")})
        for i, a in enumerate(accs):
            a.restore({k: f.read(f"stats.{i}.{k}") for k in ("sum", "sumsq", "sum_abs", "count")})
        return int(f.read("batches")[0])
    except (OSError, KeyError, ValueError):
        return 0
