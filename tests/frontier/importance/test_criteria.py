"""Every criterion against its formula, computed here from the model's own modules.

The activation feeding each down projection is rebuilt from the MLP's input and its
weights (llama: separate gate and up; phi3: one fused gate_up whose first half is the
gate; gpt2: Conv1D, weights stored transposed), not read from the hooks the
implementation uses, so a wrong layout or a dropped factor shows up as a wrong value.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from frontier.data.text import TokenSet
from frontier.errors import FrontierError
from frontier.importance import CRITERIA, compute_scores, get_criterion, register_criterion
from frontier.testing import tiny_loaded

FAMILIES = ("llama", "phi3", "gpt2")


def _tokens() -> TokenSet:
    ids = torch.randint(3, 300, (3, 24), generator=torch.Generator().manual_seed(5))
    return TokenSet(ids, "random ids", "calibration", 24, "criteria-3x24")


def _layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    inner = getattr(model, "model", None) or model.transformer  # type: ignore[attr-defined]
    return list(inner.layers if hasattr(inner, "layers") else inner.h)


def _weights(family: str, mlp: torch.nn.Module) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(the up-side weight rows per neuron [W, H] each, the down columns per neuron [W, H])."""
    if family == "llama":
        return [mlp.gate_proj.weight, mlp.up_proj.weight], mlp.down_proj.weight.T
    if family == "phi3":
        gate, up = mlp.gate_up_proj.weight.chunk(2, dim=0)
        return [gate, up], mlp.down_proj.weight.T
    # gpt2 Conv1D: weight is [in, out]
    return [mlp.c_fc.weight.T], mlp.c_proj.weight


def _activation(family: str, mlp: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The activation at the down projection's input, from the MLP input ``x`` [N, H]."""
    if family == "llama":
        return F.silu(mlp.gate_proj(x)) * mlp.up_proj(x)
    if family == "phi3":
        gate, up = (x @ mlp.gate_up_proj.weight.T).chunk(2, dim=-1)
        return F.silu(gate) * up
    return mlp.act(x @ mlp.c_fc.weight + mlp.c_fc.bias)


def _mlp_activations(family: str, model: torch.nn.Module, ids: torch.Tensor) -> list[torch.Tensor]:
    layers = _layers(model)
    inputs: list[list[torch.Tensor]] = [[] for _ in layers]
    hooks = [
        layer.mlp.register_forward_pre_hook(
            lambda _m, a, i=i: inputs[i].append(a[0].detach().reshape(-1, a[0].shape[-1]))
        )
        for i, layer in enumerate(layers)
    ]
    try:
        with torch.no_grad():
            for row in ids:
                model(input_ids=row[None])
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        return [
            _activation(family, layer.mlp, torch.cat(x)).double()
            for layer, x in zip(layers, inputs, strict=True)
        ]


def _expected(family: str, criterion: str, model: torch.nn.Module) -> list[torch.Tensor]:
    acts = _mlp_activations(family, model, _tokens().ids) if criterion != "magnitude" else None
    out = []
    for i, layer in enumerate(_layers(model)):
        ups, down = _weights(family, layer.mlp)
        down_norm = down.double().norm(dim=1)
        if criterion == "magnitude":
            score = down_norm
            for w in ups:
                score = score * w.double().norm(dim=1)
        else:
            assert acts is not None
            a = acts[i]
            if criterion == "activation":
                score = a.abs().mean(0) * down_norm
            elif criterion == "fluctuation":
                score = a.var(0, unbiased=False) * down_norm.square()
            elif criterion == "energy":
                score = a.square().mean(0) * down_norm.square()
            elif criterion == "obs":  # the cost of dropping j alone, the rest refitted
                gram = a.T @ a / a.shape[0]
                ridge = 0.01 * gram.diagonal().mean() + 1e-12
                inverse = torch.linalg.inv(gram + ridge * torch.eye(gram.shape[0]).double())
                score = down_norm.square() / inverse.diagonal()
            else:  # obs-greedy: the greedy order on [a; 1] and [down | bias] where biased
                proximal = criterion == "obs-greedy-proximal"
                score = _greedy_expected(family, layer.mlp, a, down.double().T, proximal)
        out.append(score)
    return out


def _greedy_expected(
    family: str, mlp: torch.nn.Module, a: torch.Tensor, w: torch.Tensor, proximal: bool
) -> torch.Tensor:
    from frontier.importance._greedy import energy_share_scores, greedy_removal

    x = torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype)], dim=1)
    gram = x.T @ x / x.shape[0]
    ridge = float(0.01 * gram[:-1, :-1].diagonal().mean()) + 1e-12
    bias = mlp.c_proj.bias if family == "gpt2" else None
    if bias is None:
        return energy_share_scores(greedy_removal(w, gram[:-1, :-1], ridge, proximal=proximal))
    w = torch.cat([w, bias.detach().double().view(-1, 1)], dim=1)
    removal = greedy_removal(w, gram, ridge, fixed=gram.shape[0] - 1, proximal=proximal)
    return energy_share_scores(removal)


ALL_CRITERIA = [
    "magnitude",
    "activation",
    "fluctuation",
    "energy",
    "obs",
    "obs-greedy",
    "obs-greedy-proximal",
]


@pytest.mark.parametrize("criterion", ALL_CRITERIA)
@pytest.mark.parametrize("family", FAMILIES)
def test_criterion_is_its_formula(family: str, criterion: str) -> None:
    lm = tiny_loaded(family)
    grams = get_criterion(criterion).needs_gram
    scores = compute_scores(lm, criterion, _tokens(), use_cache=False, grams=grams)
    expected = _expected(family, criterion, lm.model)
    assert len(scores.per_layer) == len(expected) == 3
    for layer, (got, want) in enumerate(zip(scores.per_layer, expected, strict=True)):
        assert got.dtype == torch.float64
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-9), f"{family} layer {layer}"


@pytest.mark.parametrize("family", FAMILIES)
def test_criteria_rank_neurons_differently(family: str) -> None:
    # the formulas are not one another in disguise: on random weights the orders differ
    lm = tiny_loaded(family)
    orders: dict[str, torch.Tensor] = {}
    for c in ("magnitude", "activation", "fluctuation"):
        orders[c] = compute_scores(lm, c, _tokens(), use_cache=False).per_layer[0].argsort()
    assert not torch.equal(orders["magnitude"], orders["activation"])
    assert not torch.equal(orders["activation"], orders["fluctuation"])


def test_random_scores_are_seeded_uniform_and_differ_per_layer() -> None:
    lm = tiny_loaded("llama")
    a = compute_scores(lm, "random", None).per_layer
    gen = torch.Generator().manual_seed(0)  # one generator, seed 0, layer after layer
    for s in a:
        assert s.dtype == torch.float64
        assert torch.equal(s, torch.rand(64, generator=gen, dtype=torch.float64))
    b = compute_scores(tiny_loaded("llama", seed=1), "random", None).per_layer
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))  # seed 0, not the model's
    assert not torch.equal(a[0], a[1])
    assert all(((s >= 0) & (s < 1)).all() for s in a)


def test_magnitude_follows_every_up_side_weight() -> None:
    # scaling one neuron's gate row (or its up row) alone must scale its score
    lm = tiny_loaded("llama")
    before = compute_scores(lm, "magnitude", None).per_layer[0].clone()
    mlp = _layers(lm.model)[0].mlp
    with torch.no_grad():
        mlp.gate_proj.weight[5] *= 3.0
        mlp.up_proj.weight[7] *= 2.0
    after = compute_scores(lm, "magnitude", None).per_layer[0]
    ratio = after / before
    assert ratio[5] == pytest.approx(3.0) and ratio[7] == pytest.approx(2.0)
    others = [j for j in range(ratio.numel()) if j not in (5, 7)]
    assert torch.allclose(ratio[others], torch.ones(len(others), dtype=torch.float64))


def test_unknown_criterion_names_the_known_ones() -> None:
    with pytest.raises(FrontierError) as exc:
        get_criterion("vibes")
    known = ", ".join(sorted(CRITERIA))
    assert str(exc.value) == f"unknown importance criterion 'vibes'; known: {known}"


def test_register_criterion_adds_a_named_criterion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("frontier.importance._criteria.CRITERIA", dict(CRITERIA))

    def ones(handles, _stats):  # type: ignore[no-untyped-def]
        return [torch.ones(h.width, dtype=torch.float64) for h in handles]

    assert (
        register_criterion("ones", needs_calibration=False, description="all equal")(ones) is ones
    )
    crit = get_criterion("ones")
    assert (crit.name, crit.fn, crit.needs_calibration, crit.description) == (
        "ones",
        ones,
        False,
        "all equal",
    )
    scores = compute_scores(tiny_loaded("llama"), "ones", None)
    assert all(torch.equal(s, torch.ones(64, dtype=torch.float64)) for s in scores.per_layer)


def test_statistics_accumulate_in_float64() -> None:
    # a large mean and a small spread: float32 sums would swamp the variance
    from frontier.importance._stats import _Accumulator

    gen = torch.Generator().manual_seed(0)
    x = (1000.0 + 0.01 * torch.randn(4096, 3, generator=gen)).float()
    acc = _Accumulator(3)
    for chunk in x.split(1000):
        acc(torch.nn.Identity(), (chunk[None],))
    assert acc.count == 4096
    assert acc.sum.dtype == acc.sumsq.dtype == acc.sum_abs.dtype == torch.float64
    var = acc.sumsq / acc.count - (acc.sum / acc.count) ** 2
    assert torch.allclose(var, x.double().var(0, unbiased=False), rtol=1e-3)


def test_statistics_round_trip_through_their_cache_tensors() -> None:
    from frontier.importance import ActivationStats, collect_stats

    lm = tiny_loaded("gpt2")
    stats = collect_stats(lm.model, lm.adapter, _tokens().ids, batch_size=2)
    again = ActivationStats.from_tensors(stats.to_tensors())
    assert again.tokens == stats.tokens == _tokens().ids.numel()
    for name in ("mean", "abs_mean", "var"):
        got, want = getattr(again, name), getattr(stats, name)
        assert len(got) == len(want) == 3
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_statistics_of_a_single_token_are_that_token() -> None:
    from frontier.importance import collect_stats

    lm = tiny_loaded("llama")
    ids = torch.tensor([[17]])
    acts = _mlp_activations("llama", lm.model, ids)
    stats = collect_stats(lm.model, lm.adapter, ids)
    assert stats.tokens == 1
    for i, a in enumerate(acts):
        assert torch.allclose(stats.mean[i], a[0], atol=1e-6)
        assert torch.allclose(stats.abs_mean[i], a[0].abs(), atol=1e-6)
        assert torch.equal(stats.var[i], torch.zeros_like(stats.var[i]))


def test_a_calibration_pass_reports_its_progress() -> None:
    from frontier.importance._stats import calibration_pass

    lm = tiny_loaded("llama")
    ids = torch.randint(3, 300, (20, 8), generator=torch.Generator().manual_seed(1))
    lines: list[str] = []
    calibration_pass(lm.model, lm.adapter, ids, batch_size=2, progress=lines.append)
    assert 5 <= len(lines) <= 11  # about every tenth of the pass, not every batch
    assert lines[-1] == "calibration pass: 160/160 tokens"
    counts = [int(line.split(": ")[1].split("/")[0]) for line in lines]
    assert counts == sorted(counts)


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "phi3"])
def test_grams_gathered_a_group_of_layers_at_a_time_are_the_same(model_type: str) -> None:
    """A memory budget for one layer's sums at a time: one pass per layer (stopping after
    it), and the same statistics, to the bit, as one pass for all layers."""
    from frontier.importance._gram import gram_bytes, gram_groups
    from frontier.importance._stats import calibration_pass

    lm = tiny_loaded(model_type)
    ids = torch.randint(3, 300, (16, 8), generator=torch.Generator().manual_seed(2))
    widths = [h.width for h in lm.adapter.handles(lm.model)]
    budget = max(gram_bytes(w) for w in widths)
    assert gram_groups(widths, budget) == [[i] for i in range(len(widths))]
    lines: list[str] = []
    one, g1 = calibration_pass(lm.model, lm.adapter, ids, batch_size=4)
    handles = lm.adapter.handles(lm.model)
    calls = [0] * len(handles)
    counters = [
        h.down_module.register_forward_pre_hook(lambda *_a, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, h in enumerate(handles)
    ]
    apart, g2 = calibration_pass(
        lm.model, lm.adapter, ids, batch_size=4, gram_budget=budget, progress=lines.append
    )
    for c in counters:
        c.remove()
    # 5 batches a pass (14 fitting windows, 2 held out); pass g > 0 starts from the
    # residual stream pass g - 1 saved after layer g - 1 and stops after layer g, so layer
    # i runs in pass 0 (the activation statistics) and, from 1 on, in its own pass
    n = len(handles)
    assert calls == [5 * (1 + (i >= 1)) for i in range(n)]
    assert g1 is not None and g2 is not None
    assert (g1.fit_tokens, g1.held_tokens) == (g2.fit_tokens, g2.held_tokens) == (112, 16)
    for a, b in [*zip(g1.fit, g2.fit, strict=True), *zip(g1.held, g2.held, strict=True)]:
        assert torch.equal(a, b)
    for a, b in zip(one.var, apart.var, strict=True):
        assert torch.equal(a, b)
    assert any("(layers 2-2)" in line for line in lines)


@pytest.mark.parametrize("blocks", [1, 3, 8])
def test_a_gram_summed_by_upper_blocks_is_the_full_symmetric_product(blocks: int) -> None:
    from frontier.importance._gram import GramAccumulator

    gen = torch.Generator().manual_seed(3)
    batches = [torch.randn(1, 50, 20, generator=gen) for _ in range(3)]
    acc = GramAccumulator(20, blocks=blocks)
    assert len(acc.blocks) == blocks and acc.blocks[0][0] == 0 and acc.blocks[-1][1] == 21
    for i, b in enumerate(batches):
        acc.holding_out = i == 2
        acc(torch.nn.Identity(), (b,))
    fit, held = acc.result()
    x = torch.cat([torch.cat(batches).reshape(-1, 20), torch.ones(150, 1)], dim=1).double()
    assert (acc.fit_count, acc.held_count) == (100, 50)
    assert torch.allclose(fit, x[:100].t() @ x[:100] / 100, rtol=1e-5, atol=1e-6)
    assert torch.allclose(held, x[100:].t() @ x[100:] / 50, rtol=1e-5, atol=1e-6)
    assert torch.equal(fit, fit.t()) and torch.equal(held, held.t())


def test_gram_blocks_grow_with_the_width_up_to_four() -> None:
    from frontier.importance._gram import gram_blocks

    assert [gram_blocks(w) for w in (64, 255, 256, 767, 1536, 14336)] == [1, 1, 1, 2, 4, 4]


def test_gram_groups_pack_consecutive_layers_into_the_budget() -> None:
    from frontier.importance._gram import gram_bytes, gram_groups

    one = gram_bytes(7)
    assert gram_groups([7, 7, 7, 7, 7], 2 * one) == [[0, 1], [2, 3], [4]]
    assert gram_groups([7, 7, 7], None) == [[0, 1, 2]]
    assert gram_groups([7, 7], 1) == [[0], [1]]  # a layer over the budget gets its own pass
    assert gram_groups([], 10) == []


def test_every_registered_criterion_is_checked_against_its_formula() -> None:
    # a new criterion must join ALL_CRITERIA (and _expected) or say why it cannot
    assert set(CRITERIA) == {*ALL_CRITERIA, "random"}
