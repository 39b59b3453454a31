"""One layer's fit: Adam on the MLP's parameters against its target outputs, early-stopped
on held-out tokens. Pure of any model: a forward function, its parameters and tensors."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

EVAL_CHUNK = 4096  # tokens per held-out forward: bounds the memory of an evaluation
BETAS = (0.9, 0.95)


@dataclass(frozen=True)
class LayerFit:
    """What one layer's fit did; errors are ``sum ||f(x) - y||^2 / sum ||y||^2`` on the
    held-out tokens (0: the unpruned MLP's output exactly)."""

    layer: int
    before: float
    after: float
    steps_run: int
    kept_step: int
    stop_reason: str
    cpu_seconds: float
    lr: float = 0.0  # the rate of the attempt kept (after any back-off)
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "heldout_error_before": self.before,
            "heldout_error_after": self.after,
            "steps_run": self.steps_run,
            "kept_step": self.kept_step,
            "stop_reason": self.stop_reason,
            "cpu_seconds": self.cpu_seconds,
            "lr": self.lr,
            "attempts": self.attempts,
        }


def relative_error(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> float:
    """``sum ||forward(x) - y||^2 / sum ||y||^2`` over the rows of ``x`` and ``y``, in float64
    sums of chunked float32 products."""
    err = energy = 0.0
    with torch.no_grad():
        for start in range(0, x.shape[0], EVAL_CHUNK):
            yc = y[start : start + EVAL_CHUNK]
            diff = forward(x[start : start + EVAL_CHUNK]).float() - yc
            err += float(diff.double().square().sum())
            energy += float(yc.double().square().sum())
    return err / max(energy, 1e-300)


def fit_layer(
    forward: Callable[[torch.Tensor], torch.Tensor],
    params: Sequence[torch.nn.Parameter],
    x: torch.Tensor,
    y: torch.Tensor,
    x_held: torch.Tensor,
    y_held: torch.Tensor,
    *,
    steps: int,
    batch_tokens: int,
    lr: float,
    eval_every: int,
    patience: int,
    seed: int,
    cpu_seconds: float | None = None,
    layer: int = 0,
    backoffs: int = 0,
) -> LayerFit:
    """Fit ``params`` so that ``forward(x)`` reproduces ``y`` (rows are tokens); on return
    they hold the weights at the best held-out error (the starting ones when no step
    improved on them).

    With ``backoffs``, a fit whose first evaluation is no better than its start (the rate
    too large for this layer: the refit's weights are a least-squares optimum, and a few
    large Adam steps leave it) starts again from the starting weights at a third of the
    rate, at most ``backoffs`` times, within the same CPU budget."""
    cpu0 = time.process_time()
    gen = torch.Generator().manual_seed(seed)
    scale = float(y.double().square().sum(-1).mean())  # the loss is relative to it
    before = relative_error(forward, x_held, y_held)
    best, best_step, bad = before, 0, 0
    best_state = [p.detach().clone() for p in params]
    rate, attempts, ran = lr, 1, 0
    opt = torch.optim.Adam(params, lr=rate, betas=BETAS)
    reason, step = "steps", 0
    n = x.shape[0]
    while step < steps:
        if cpu_seconds is not None and time.process_time() - cpu0 > cpu_seconds:
            reason = "cpu budget"
            if step % eval_every:  # the steps since the last evaluation count too
                held = relative_error(forward, x_held, y_held)
                if held < best:
                    best, best_step = held, step
                    best_state = [p.detach().clone() for p in params]
            break
        for group in opt.param_groups:
            group["lr"] = rate * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))
        idx = torch.randint(n, (min(batch_tokens, n),), generator=gen).to(x.device)
        opt.zero_grad(set_to_none=True)
        diff = forward(x[idx]).float() - y[idx]
        loss = diff.square().sum(-1).mean() / max(scale, 1e-300)
        if not math.isfinite(float(loss.detach())):
            reason = "non-finite loss"
            break
        loss.backward()
        opt.step()
        step += 1
        if step % eval_every == 0 or step == steps:
            held = relative_error(forward, x_held, y_held)
            if held < best:
                best, best_step, bad = held, step, 0
                best_state = [p.detach().clone() for p in params]
            elif step == eval_every and best_step == 0 and attempts <= backoffs:
                # the first check made it worse: again from the start, a third of the rate
                _restore(params, best_state)
                rate, attempts, ran, step = rate / 3, attempts + 1, ran + step, 0
                opt = torch.optim.Adam(params, lr=rate, betas=BETAS)
            else:
                bad += 1
                if bad >= patience:
                    reason = "early stop"
                    break
    _restore(params, best_state)
    for p in params:
        p.grad = None
    cpu = time.process_time() - cpu0
    return LayerFit(layer, before, best, ran + step, best_step, reason, cpu, rate, attempts)


def _restore(params: Sequence[torch.nn.Parameter], state: Sequence[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, saved in zip(params, state, strict=True):
            p.copy_(saved)
