"""One layer's fit on a linear map: it finds an exact solution, and a fit that only makes
things worse gives the starting weights back exactly."""

from __future__ import annotations

from typing import Any

import torch

from frontier.reconstruct import fit_layer
from frontier.reconstruct._fit import relative_error


def _problem(seed: int = 0) -> tuple[Any, ...]:
    gen = torch.Generator().manual_seed(seed)
    target = torch.randn(4, 8, generator=gen)
    x, xh = torch.randn(512, 8, generator=gen), torch.randn(128, 8, generator=gen)
    layer = torch.nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        layer.weight.copy_(target + 0.3 * torch.randn(4, 8, generator=gen))
    return layer, x, x @ target.t(), xh, xh @ target.t()


def test_the_fit_reaches_an_exact_solution() -> None:
    layer, x, y, xh, yh = _problem()
    fit = fit_layer(
        layer,
        list(layer.parameters()),
        x,
        y,
        xh,
        yh,
        steps=400,
        batch_tokens=128,
        lr=3e-2,
        eval_every=20,
        patience=5,
        seed=0,
    )
    assert fit.before > 0.01 and fit.after < 1e-4
    assert relative_error(layer, xh, yh) == fit.after  # the weights kept are the best ones


def test_a_fit_that_only_gets_worse_keeps_the_starting_weights_exactly() -> None:
    layer, x, y, xh, yh = _problem()
    start = layer.weight.detach().clone()
    fit = fit_layer(
        layer,
        list(layer.parameters()),
        x,
        y,
        xh,
        yh,
        steps=20,
        batch_tokens=128,
        lr=50.0,
        eval_every=5,
        patience=2,
        seed=0,
    )
    assert fit.kept_step == 0 and fit.after == fit.before
    assert torch.equal(layer.weight, start) and layer.weight.grad is None


def _fit(layer: Any, problem: tuple[Any, ...], lr: float, backoffs: int) -> Any:
    _, x, y, xh, yh = problem
    return fit_layer(
        layer,
        list(layer.parameters()),
        x,
        y,
        xh,
        yh,
        steps=200,
        batch_tokens=64,
        lr=lr,
        eval_every=25,
        patience=3,
        seed=0,
        backoffs=backoffs,
    )


def test_a_rate_too_large_for_the_layer_backs_off_and_then_improves() -> None:
    problem = _problem()
    layer = problem[0]
    fit = _fit(layer, problem, lr=10.0, backoffs=3)
    # the first check at 10 is worse than the start; at a third or less it improves
    assert fit.attempts > 1 and fit.lr == 10.0 / 3 ** (fit.attempts - 1)
    assert fit.after < 0.5 * fit.before and fit.kept_step > 0
    assert fit.steps_run > 200 - 25  # the failed attempts' steps are counted too
    assert relative_error(layer, problem[3], problem[4]) == fit.after


def test_without_backoffs_a_rate_too_large_is_kept() -> None:
    problem = _problem()
    fit = _fit(problem[0], problem, lr=10.0, backoffs=0)
    assert fit.attempts == 1 and fit.lr == 10.0


def test_backoffs_that_never_help_keep_the_starting_weights() -> None:
    problem = _problem()
    layer = problem[0]
    start = layer.weight.detach().clone()
    fit = _fit(layer, problem, lr=1e4, backoffs=2)
    assert fit.attempts == 3 and fit.lr == 1e4 / 9
    assert fit.kept_step == 0 and fit.after == fit.before and torch.equal(layer.weight, start)
