"""Removed MLPs (width 0) on tiny random models of every family: the layer adds its down
projection's bias alone (or nothing), the refit with no kept column solves the bias to
the calibration mean of the layer's output, and restore is bit for bit."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from frontier.arch import WeightLayout, adapter_for
from frontier.arch.weights import down_matrix
from frontier.data.text import TokenSet
from frontier.importance import compute_scores
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner, count_mlp_parameters, count_parameters
from frontier.testing import TINY_CONFIGS, WIDTH, tiny_loaded, tiny_model

FAMILIES = sorted(TINY_CONFIGS)
BIASED = ("falcon", "gpt2", "gpt_neox", "opt")  # a down bias in the tiny configs
WIDTHS = (0, 16, 0)  # two of three MLPs removed
IDS = torch.tensor([[1, 17, 33, 5, 99, 250, 7, 8, 42, 3], [4, 4, 200, 31, 2, 90, 11, 6, 8, 1]])
NO_ROOM = -(10**12)  # every copied layer parks


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS, use_cache=False).logits


def _pruner(model: torch.nn.Module) -> Pruner:
    gen = torch.Generator().manual_seed(1)
    return Pruner(model, [torch.rand(w, generator=gen) for w in Pruner(model).full])


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _bias_or_zero(down: Any, hidden: int) -> torch.Tensor:
    bias = getattr(down, "bias", None)
    return torch.zeros(hidden) if bias is None else bias.detach()


@pytest.mark.parametrize("family", FAMILIES)
def test_a_removed_mlp_adds_its_down_bias_alone_and_restores_bit_for_bit(family: str) -> None:
    model = tiny_model(family)
    adapter = adapter_for(model.config)
    hidden = model.config.get_text_config().hidden_size
    state, before = _state(model), _logits(model)
    modules = dict(model.named_modules())
    total, mlp = count_parameters(model), count_mlp_parameters(model)
    pruner = _pruner(model)
    selection = pruner.select(Plan(WIDTHS, pruner.full))
    # the reference: every dropped neuron's down column zeroed in a copy
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        for h, keep in zip(adapter.handles(zeroed), selection.kept, strict=True):
            gone = torch.ones(h.width, dtype=torch.bool)
            gone[keep] = False
            w = h.down_module.weight
            if adapter.layout is WeightLayout.CONV1D:
                w[gone, :] = 0
            else:
                w[:, gone] = 0
    n_up = 2 if adapter.fused_gate_up else len(adapter.up)
    up_bias = getattr(pruner.handles[0].up_modules[0], "bias", None) is not None
    per_neuron = (n_up + 1) * hidden + (n_up if up_bias else 0)
    with pruner.pruned(selection):
        pruned = _logits(model)
        for i in (0, 2):
            h = pruner.handles[i]
            assert h.width == 0
            x = torch.randn(2, 5, hidden)
            for up in h.up_modules:
                assert up(x).shape == (2, 5, 0)
            out = h.down_module(torch.empty(2, 5, 0))
            want = _bias_or_zero(pruner._originals[i][adapter.down], hidden)  # type: ignore[index]
            assert torch.equal(out, want.expand(2, 5, hidden))  # bit for bit
        removed = (2 * WIDTH + WIDTH - 16) * per_neuron
        assert count_mlp_parameters(model) == mlp - removed
        assert count_parameters(model) == total - removed
    torch.testing.assert_close(pruned, _logits(zeroed), atol=1e-5, rtol=0)
    assert not torch.allclose(pruned, before, atol=1e-3)
    assert _same(state, model.state_dict())
    assert all(dict(model.named_modules())[n] is m for n, m in modules.items())
    assert torch.equal(_logits(model), before)


@pytest.mark.parametrize("family", ["llama", "gpt2", "phi3"])
def test_a_parked_trial_with_removed_mlps_is_the_same_model(family: str) -> None:
    model = tiny_model(family)
    state = _state(model)
    pruner = _pruner(model)
    plan = Plan(WIDTHS, pruner.full)
    with pruner.pruned(plan):
        expected = _logits(model)
    pruner.apply(plan, room=NO_ROOM)
    assert len(pruner.parking) > 0
    assert torch.equal(_logits(model), expected)
    pruner.restore()
    assert len(pruner.parking) == 0 and _same(state, model.state_dict())


def _calibrated(family: str) -> tuple[Any, Any]:
    lm = tiny_loaded(family)
    ids = torch.randint(0, 300, (16, 16), generator=torch.Generator().manual_seed(3))
    tokens = TokenSet(ids, "random ids", "calibration", 16, "rand-16")
    return lm, compute_scores(lm, "energy", tokens, grams=True)


@pytest.mark.parametrize("family", [*BIASED, "llama"])
def test_the_refit_of_no_kept_column_is_the_mean_output(family: str) -> None:
    """With every neuron dropped, the ridge least squares has only the bias left: it is
    solved to the calibration mean of the unpruned layer's output (W E[a] + b), read off
    the Gram's constant column; a projection without a bias writes nothing."""
    lm, scores = _calibrated(family)
    state, before = _state(lm.model), _logits(lm.model)
    op = PruningOperator(lm.model, scores, refit=True, alphas=[1.0] * 3)
    selection = op.select(Plan(WIDTHS, op.full))
    refit = op.weights(selection)
    assert refit is not None
    hidden = lm.model.config.get_text_config().hidden_size
    for i in (0, 2):
        new = refit[i]
        assert new is not None and new.weight.numel() == 0
        w, b = down_matrix(op.pruner.handles[i].down_module, lm.adapter.layout)
        if b is None:
            assert new.bias is None
            continue
        mean_input = scores.grams.full(i)[:-1, -1].to(w.dtype)  # type: ignore[union-attr]
        assert new.bias is not None
        torch.testing.assert_close(new.bias, w @ mean_input + b, atol=1e-5, rtol=1e-5)
        assert (new.bias - b).abs().max() > 1e-3  # not the bias the layer had
    with op.pruned(selection):
        for i in (0, 2):
            out = op.pruner.handles[i].down_module(torch.empty(1, 3, 0))
            want = refit[i].bias if refit[i].bias is not None else torch.zeros(hidden)  # type: ignore[union-attr]
            assert torch.equal(out, want.expand(1, 3, hidden))  # type: ignore[union-attr]
    assert _same(state, lm.model.state_dict()) and torch.equal(_logits(lm.model), before)


@pytest.mark.parametrize("family", BIASED)
def test_compensating_a_removed_mlp_adds_its_mean_output_to_the_bias(family: str) -> None:
    """FLAP's compensation of every neuron: the same mean output as the refit's bias."""
    lm, scores = _calibrated(family)
    state = _state(lm.model)
    refit = PruningOperator(lm.model, scores, refit=True, alphas=[1.0] * 3)
    plan = Plan(WIDTHS, refit.full)
    solved = refit.weights(refit.select(plan))
    assert solved is not None
    op = PruningOperator(lm.model, scores, refit=False, compensate=True)
    with op.pruned(plan):
        for i in (0, 2):
            bias: Any = op.pruner.handles[i].down_module.bias
            torch.testing.assert_close(bias, solved[i].bias, atol=1e-5, rtol=1e-5)  # type: ignore[union-attr]
    assert _same(state, lm.model.state_dict())
