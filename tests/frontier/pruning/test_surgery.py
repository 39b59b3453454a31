"""Exactness of plan application on tiny random models of every supported family."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from frontier.arch import adapter_for
from frontier.arch.weights import WeightLayout
from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.pruning.refit import DownWeights
from frontier.pruning.surgery import Pruner, Selection, count_mlp_parameters, count_parameters
from frontier.testing import TINY_CONFIGS, tiny_model

FAMILIES = sorted(TINY_CONFIGS)
IDS = torch.tensor([[1, 17, 33, 5, 99, 250, 7, 8, 42, 3], [4, 4, 200, 31, 2, 90, 11, 6, 8, 1]])


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def _scores(model: torch.nn.Module, seed: int = 1) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    widths = adapter_for(model.config).full_widths(model)
    return [torch.rand(w, generator=gen) for w in widths]


def _zeroed(model: torch.nn.Module, selection: Selection) -> torch.nn.Module:
    """A deep copy whose dropped neurons write nothing (down-projection inputs zeroed)."""
    ref = copy.deepcopy(model)
    adapter = adapter_for(ref.config)
    with torch.no_grad():
        for h, keep in zip(adapter.handles(ref), selection.kept, strict=True):
            dropped = torch.ones(h.width, dtype=torch.bool)
            dropped[keep] = False
            w = h.down_module.weight
            if adapter.layout is WeightLayout.CONV1D:
                w[dropped, :] = 0
            else:
                w[:, dropped] = 0
    return ref


@pytest.mark.parametrize("model_type", FAMILIES)
def test_keep_all_is_identical(model_type: str) -> None:
    model = tiny_model(model_type)
    before = _logits(model)
    pruner = Pruner(model, _scores(model))
    with pruner.pruned(pruner.dense_plan()):
        assert torch.equal(_logits(model), before)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_pruned_equals_zeroed_neurons(model_type: str) -> None:
    model = tiny_model(model_type)
    pruner = Pruner(model, _scores(model))
    plan = Plan.from_ratios([0.5, 0.25, 0.875], pruner.full)
    reference = _logits(_zeroed(model, pruner.select(plan)))
    with pruner.pruned(plan):
        pruned = _logits(model)
    assert torch.allclose(pruned, reference, atol=1e-5, rtol=0)
    # and pruning really changed the output
    assert not torch.allclose(pruned, _logits(model), atol=1e-3)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_parameter_counts_are_exact(model_type: str) -> None:
    model = tiny_model(model_type)
    adapter = adapter_for(model.config)
    hidden = model.config.get_text_config().hidden_size
    total, mlp = count_parameters(model), count_mlp_parameters(model)
    pruner = Pruner(model, _scores(model))
    plan = Plan.from_ratios([0.5, 0.25, 0.875], pruner.full)
    n_up = 2 if adapter.fused_gate_up else len(adapter.up)
    up_bias = getattr(adapter.handles(model)[0].up_modules[0], "bias", None) is not None
    per_neuron = (n_up + 1) * hidden + (n_up if up_bias else 0)
    removed = sum(f - w for f, w in zip(plan.full, plan.widths, strict=True)) * per_neuron
    with pruner.pruned(plan):
        assert count_mlp_parameters(model) == mlp - removed
        assert count_parameters(model) == total - removed
    assert count_parameters(model) == total


@pytest.mark.parametrize("model_type", FAMILIES)
def test_restore_is_bit_identical_and_originals_untouched(model_type: str) -> None:
    model = tiny_model(model_type)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modules_before = {n: m for n, m in model.named_modules()}
    before = _logits(model)
    pruner = Pruner(model, _scores(model))
    pruner.apply(Plan.uniform(0.5, pruner.full))
    # The swapped-in modules are new objects; the originals still have full shapes.
    for name, module in modules_before.items():
        if hasattr(module, "weight") and module.weight is not None:
            assert module.weight.shape == state[f"{name}.weight"].shape
    pruner.restore()
    after = model.state_dict()
    assert state.keys() == after.keys()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert dict(model.named_modules()).keys() == modules_before.keys()
    assert all(dict(model.named_modules())[n] is m for n, m in modules_before.items())
    assert torch.equal(_logits(model), before)


def test_keeps_top_scored_in_original_order() -> None:
    model = tiny_model("llama")
    scores = [torch.arange(64, dtype=torch.float32).flip(0)] * 3  # neuron 0 most important
    pruner = Pruner(model, scores)
    sel = pruner.select(Plan.uniform(0.25, pruner.full))
    assert sel.to_lists()[0] == list(range(16))
    shuffled = torch.randperm(64).float()
    sel = Pruner(model, [shuffled] * 3).select(Plan.uniform(0.5, pruner.full))
    expected = sorted(torch.argsort(shuffled, descending=True)[:32].tolist())
    assert sel.to_lists()[1] == expected


def test_bias_compensation_adds_dropped_mean_contribution() -> None:
    model = tiny_model("llama")
    pruner0 = Pruner(model, _scores(model))
    means = [torch.randn(64) for _ in range(3)]
    pruner = Pruner(model, _scores(model), mean_activation=means)
    plan = Plan.uniform(0.5, pruner.full)
    with pruner.pruned(plan, compensate=True) as sel:
        down = pruner.handles[0].down_module
        original = pruner._originals[0]["down_proj"]  # type: ignore[index]
        dropped = torch.ones(64, dtype=torch.bool)
        dropped[sel.kept[0]] = False
        expected = original.weight[:, dropped] @ means[0][dropped]
        assert torch.allclose(down.bias, expected, atol=1e-6)
    assert pruner.handles[0].down_module.bias is None
    with pytest.raises(FrontierError):
        pruner0.apply(plan, compensate=True)


def test_apply_twice_without_restore_is_refused() -> None:
    model = tiny_model("llama")
    pruner = Pruner(model, _scores(model))
    pruner.apply(Plan.uniform(0.5, pruner.full))
    with pytest.raises(RuntimeError):
        pruner.apply(Plan.uniform(0.5, pruner.full))
    pruner.restore()


def test_selection_round_trip_and_validation() -> None:
    model = tiny_model("gpt2")
    pruner = Pruner(model, _scores(model))
    sel = pruner.select(Plan.from_ratios([0.5, 0.25, 1.0], pruner.full))
    again = Selection.from_lists(sel.plan, sel.to_lists())
    assert all(torch.equal(a, b) for a, b in zip(sel.kept, again.kept, strict=True))
    with pytest.raises(FrontierError):
        Selection.from_lists(sel.plan, [[0, 0] + list(range(2, 32))] + sel.to_lists()[1:])
    with pytest.raises(FrontierError):
        pruner.select(Plan.uniform(0.5, [32, 32, 32]))


# Families whose down projection has a bias of its own (compensation adds to it), and
# llama, where compensation creates one.
BIASED_DOWN = ("falcon", "gpt2", "gpt_neox", "opt")


@pytest.mark.parametrize("model_type", [*BIASED_DOWN, "llama"])
def test_bias_compensation_is_exact_when_dropped_neurons_sit_at_their_mean(
    model_type: str,
) -> None:
    # One token: the activation at layer 0's down input is one vector a. With a as the
    # "mean", folding the dropped neurons' a_j * down_j into the bias reproduces the
    # unpruned model exactly; without compensation the output moves.
    model = tiny_model(model_type)
    adapter = adapter_for(model.config)
    h0 = adapter.handles(model)[0]
    had_bias = getattr(h0.down_module, "bias", None)
    assert (had_bias is not None) == (model_type in BIASED_DOWN)
    original_bias = None if had_bias is None else had_bias.detach().clone()
    ids = torch.tensor([[17]])
    seen: list[torch.Tensor] = []
    hook = h0.down_module.register_forward_pre_hook(lambda _m, a: seen.append(a[0].detach()))
    with torch.no_grad():
        full = model(input_ids=ids).logits
    hook.remove()
    act = seen[0].reshape(-1)
    widths = adapter.full_widths(model)
    means = [act, *(torch.zeros(w) for w in widths[1:])]
    pruner = Pruner(model, _scores(model), mean_activation=means)
    plan = Plan.from_ratios([0.5, 1.0, 1.0], pruner.full)
    with pruner.pruned(plan):
        with torch.no_grad():
            plain = model(input_ids=ids).logits
    with pruner.pruned(plan, compensate=True):
        with torch.no_grad():
            compensated = model(input_ids=ids).logits
    assert (plain - full).abs().max() > 1e-3
    assert torch.allclose(compensated, full, atol=1e-5, rtol=1e-5)
    restored = adapter.handles(model)[0].down_module.bias
    if original_bias is None:
        assert restored is None
    else:
        assert torch.equal(restored, original_bias)


def test_refit_weights_replace_the_kept_down_columns() -> None:
    model = tiny_model("llama")
    pruner = Pruner(model, _scores(model))
    assert pruner.model is model
    plan = Plan.from_ratios([0.5, 1.0, 0.25], pruner.full)
    gen = torch.Generator().manual_seed(3)
    hidden = model.config.hidden_size
    new = [DownWeights(torch.randn(hidden, 32, generator=gen)), None, None]
    with pruner.pruned(plan, refit=new) as sel:
        down = pruner.handles[0].down_module
        assert torch.equal(down.weight, new[0].weight)  # type: ignore[union-attr]
        original = pruner._originals[2]["down_proj"]  # type: ignore[index]
        kept = original.weight[:, sel.kept[2]]
        assert torch.equal(pruner.handles[2].down_module.weight, kept)  # None: plain cut


def test_a_selection_is_applied_as_given_not_reselected_from_the_scores() -> None:
    model = tiny_model("llama")
    pruner = Pruner(model, _scores(model))
    plan = Plan.uniform(0.5, pruner.full)
    other = Pruner(model, _scores(model, seed=9)).select(plan)
    assert other.to_lists() != pruner.select(plan).to_lists()
    reference = _logits(_zeroed(model, other))
    with pruner.pruned(other) as applied:
        assert applied is other
        assert torch.allclose(_logits(model), reference, atol=1e-5)


def test_dense_plan_keeps_every_neuron_with_the_default_rounding() -> None:
    pruner = Pruner(tiny_model("llama"))
    plan = pruner.dense_plan()
    assert plan == Plan(pruner.full, pruner.full, 8, 8)
    assert pruner.dense_plan(multiple=4, floor=2) == Plan(pruner.full, pruner.full, 4, 2)


def test_mlp_parameter_count_against_the_module_names() -> None:
    model = tiny_model("llama")
    by_name = sum(p.numel() for n, p in model.named_parameters() if ".mlp." in n)
    assert count_mlp_parameters(model) == by_name > 0


def test_refusals_name_their_reason() -> None:
    model = tiny_model("llama")
    scores = _scores(model)
    plan = Plan.uniform(0.5, (64, 64, 64))

    def message(call: Callable[[], object], error: type[Exception] = FrontierError) -> str:
        with pytest.raises(error) as info:
            call()
        return str(info.value)

    assert message(lambda: Pruner(model, scores[:2])) == "2 score vectors for 3 layers"
    bad = [scores[0], torch.rand(63), scores[2]]
    assert message(lambda: Pruner(model, bad)) == "layer 1: scores of shape (63,), width 64"
    bare = Pruner(model)
    assert (
        message(lambda: bare.apply(plan))
        == "this pruner has no importance scores: apply a Selection"
    )
    pruner = Pruner(model, scores)
    deeper = Plan.uniform(0.5, (32, 32, 32, 32))
    assert message(lambda: pruner.select(deeper)) == (
        "plan is for MLP widths (32, 32, 32)..., this model has (64, 64, 64)..."
    )
    foreign = Selection.from_lists(Plan.uniform(0.5, (32, 32, 32)), [list(range(16))] * 3)
    assert message(lambda: pruner.apply(foreign)) == (
        "selection is for a model with other MLP widths"
    )
    assert message(lambda: pruner.apply(plan, compensate=True)) == (
        "bias compensation needs calibration activation statistics"
    )
    with_means = Pruner(model, scores, mean_activation=[torch.zeros(64)] * 3)
    assert message(lambda: with_means.apply(plan, compensate=True, refit=[None] * 3)) == (
        "bias compensation and the refit exclude each other"
    )
    pruner.apply(plan)
    assert message(lambda: pruner.apply(plan), RuntimeError) == (
        "a plan is already applied; call restore() first"
    )
    pruner.restore()


def test_bias_compensation_in_bf16_reads_float32_means() -> None:
    model = tiny_model("llama").to(torch.bfloat16)
    means = [torch.randn(64) for _ in range(3)]  # calibration statistics stay float32
    pruner = Pruner(model, _scores(model), mean_activation=means)
    with pruner.pruned(Plan.uniform(0.5, pruner.full), compensate=True) as sel:
        down = pruner.handles[0].down_module
        assert down.bias.dtype == torch.bfloat16
        original = pruner._originals[0]["down_proj"]  # type: ignore[index]
        dropped = torch.ones(64, dtype=torch.bool)
        dropped[sel.kept[0]] = False
        expected = original.weight[:, dropped] @ means[0][dropped].to(torch.bfloat16)
        assert torch.allclose(down.bias.float(), expected.float(), atol=2e-2, rtol=2e-2)
