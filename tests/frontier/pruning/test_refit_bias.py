"""The refit of families whose down projection has a bias, against a solve of its own.

For gpt2, opt, gpt_neox and falcon the activation is augmented with a constant 1 whose
column is the bias, and the ridge must never reach that column. Each test here sets
large random down biases (a tiny model's are small), uses a ridge strong enough to move
a penalised bias far, and compares the refit with the normal equations written out
from the raw down-projection inputs, so a ridge on the bias, or a bias lost on the way
into the model, fails them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from frontier.arch.weights import down_matrix
from frontier.data.text import TokenSet
from frontier.importance import compute_scores
from frontier.importance._gram import held_windows
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.pruning.refit import LayerRefit
from frontier.testing import WIDTH, tiny_loaded

BIASED = ("falcon", "gpt2", "gpt_neox", "opt")
ALPHAS = (0.1, 1.0)
WIDTHS = (16, 40, 56)  # both forms of a prefix: 16 kept of 64, and more kept than dropped
WINDOWS, SEQ = 16, 16  # two of the sixteen calibration windows are held out


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))


@dataclass(frozen=True)
class Layer:
    """One unpruned down projection as the refit regresses it, and its raw inputs."""

    w: torch.Tensor  # [H, I], float64
    bias: torch.Tensor  # [H], float64
    fit: torch.Tensor  # [tokens, I] of the fitting windows, float64
    held: torch.Tensor  # [tokens, I] of the held-out windows, float64

    @property
    def every(self) -> torch.Tensor:
        return torch.cat([self.fit, self.held])


def biased_model(family: str, seed: int = 0) -> Any:
    """A tiny model of ``family`` with large random down biases, set explicitly."""
    lm = tiny_loaded(family)
    gen = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        for h in lm.adapter.handles(lm.model):
            bias = h.down_module.bias
            assert bias is not None, f"{family}: the down projection should carry a bias"
            bias.copy_(torch.randn(bias.shape, generator=gen))
    return lm


def calibration() -> TokenSet:
    ids = torch.randint(0, 300, (WINDOWS, SEQ), generator=torch.Generator().manual_seed(3))
    return TokenSet(ids, "random ids", "calibration", SEQ, f"rand-{WINDOWS}-{SEQ}")


def down_layers(lm: Any, tokens: TokenSet) -> list[Layer]:
    """Every layer's unpruned down weight and bias, and its inputs on ``tokens`` (the last
    :func:`held_windows` windows held out, as the calibration splits them)."""
    handles = lm.adapter.handles(lm.model)
    seen: list[list[torch.Tensor]] = [[] for _ in handles]
    hooks = [
        h.down_module.register_forward_pre_hook(
            lambda _m, args, i=i: seen[i].append(args[0].detach())
        )
        for i, h in enumerate(handles)
    ]
    try:
        with torch.no_grad():
            lm.model(input_ids=tokens.ids, use_cache=False)
    finally:
        for hook in hooks:
            hook.remove()
    split = WINDOWS - held_windows(WINDOWS)
    out = []
    for h, (x,) in zip(handles, seen, strict=True):
        w, bias = down_matrix(h.down_module, lm.adapter.layout)
        assert bias is not None
        x = x.double().reshape(WINDOWS, -1, x.shape[-1])  # opt's are flattened to [B*T, I]
        out.append(
            Layer(
                w.double().clone(),
                bias.double().clone(),
                x[:split].reshape(-1, x.shape[-1]),
                x[split:].reshape(-1, x.shape[-1]),
            )
        )
    return out


def ridge_solve(
    layer: Layer, a: torch.Tensor, keep: torch.Tensor, alpha: float, *, ridge_bias: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight [H, |K|], bias [H]) minimising, over the rows of ``a``, the mean of
    ``||W a + b - W' a_K - b'||^2`` plus ``lambda ||W'||^2``, by the normal equations.

    ``lambda`` is ``alpha`` times the mean of ``E[a_j^2]`` over every neuron; the bias
    ``b'`` is not penalised unless ``ridge_bias`` (the wrong solve, to show the
    difference is visible)."""
    n = a.shape[0]
    x = torch.cat([a[:, keep], torch.ones(n, 1, dtype=a.dtype)], dim=1)
    target = a @ layer.w.t() + layer.bias
    lam = alpha * float(a.square().mean(0).mean())
    penalty = torch.full((x.shape[1],), lam, dtype=a.dtype)
    if not ridge_bias:
        penalty[-1] = 0.0
    lhs = x.t() @ x / n + torch.diag(penalty)
    solved = torch.linalg.solve(lhs, x.t() @ target / n).t()  # [H, |K| + 1]
    return solved[:, :-1], solved[:, -1]


def held_error(layer: Layer, keep: torch.Tensor, alpha: float) -> float:
    """The relative output error on the held-out windows of the solve on the fitting ones."""
    weight, bias = ridge_solve(layer, layer.fit, keep, alpha)
    a = layer.held
    want = a @ layer.w.t() + layer.bias
    got = a[:, keep] @ weight.t() + bias
    return float((want - got).square().sum() / want.square().sum())


def _as_matrix(weight: torch.Tensor, lm: Any) -> torch.Tensor:
    """A down weight in the module's layout as [H, I]."""
    from frontier.arch import WeightLayout

    return weight.t() if lm.adapter.layout is WeightLayout.CONV1D else weight


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("family", BIASED)
def test_the_refitted_weights_and_bias_are_the_ridge_solve_with_the_bias_unpenalised(
    family: str, alpha: float
) -> None:
    lm = biased_model(family)
    tokens = calibration()
    layers = down_layers(lm, tokens)
    scores = compute_scores(lm, "energy", tokens, grams=True)
    op = PruningOperator(lm.model, scores, refit=True, alphas=[alpha] * len(layers))
    selection = op.select(Plan(WIDTHS, op.full, multiple=4, floor=4))
    refitted = op.weights(selection)
    assert refitted is not None
    with op.pruned(selection):
        live = [h.down_module for h in lm.adapter.handles(lm.model)]
        for i, (layer, keep, new) in enumerate(zip(layers, selection.kept, refitted, strict=True)):
            assert new is not None and new.bias is not None
            weight, bias = ridge_solve(layer, layer.every, keep, alpha)
            wrong = ridge_solve(layer, layer.every, keep, alpha, ridge_bias=True)[1]
            # a ridge on the bias would move it far beyond the tolerance, and the refit
            # moves it far from where it was
            assert (wrong - bias).abs().max() > 0.1, i
            assert (bias - layer.bias).abs().max() > 0.1, i
            tol = 1e-4 * max(1.0, float(weight.abs().max()))
            torch.testing.assert_close(new.bias.double(), bias, atol=tol, rtol=1e-4)
            torch.testing.assert_close(
                _as_matrix(new.weight, lm).double(), weight, atol=tol, rtol=1e-4
            )
            # the model holds exactly what the refit gave, the bias included
            assert live[i].bias is not None and torch.equal(live[i].bias, new.bias)
            assert torch.equal(live[i].weight, new.weight)


@pytest.mark.parametrize("family", BIASED)
def test_the_direct_solve_and_the_held_out_errors_leave_the_bias_unpenalised(
    family: str,
) -> None:
    """:meth:`LayerRefit.columns` (any kept set) and :meth:`LayerRefit.errors` (what
    chooses alpha) give the same unpenalised-bias solve, on the Grams the calibration
    gathered."""
    lm = biased_model(family, seed=1)
    tokens = calibration()
    layers = down_layers(lm, tokens)
    grams = compute_scores(lm, "energy", tokens, grams=True).grams
    assert grams is not None
    keep = torch.randperm(WIDTH, generator=torch.Generator().manual_seed(5))[:24].sort().values
    for i, layer in enumerate(layers):
        for alpha in ALPHAS:
            direct = LayerRefit(layer.w, layer.bias, grams.full(i), alpha).columns(keep)
            weight, bias = ridge_solve(layer, layer.every, keep, alpha)
            tol = 1e-5 * max(1.0, float(weight.abs().max()))
            torch.testing.assert_close(direct[:, -1], bias, atol=tol, rtol=1e-5)
            torch.testing.assert_close(direct[:, :-1], weight, atol=tol, rtol=1e-5)
        errors = LayerRefit(layer.w, layer.bias, grams.fit[i], ALPHAS[0]).errors(
            keep, grams.held[i], ALPHAS
        )
        for alpha in ALPHAS:
            assert errors[alpha] == pytest.approx(held_error(layer, keep, alpha), rel=1e-4)
