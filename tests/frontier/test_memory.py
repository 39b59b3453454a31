"""The memory a study needs, from the config's shapes, and the one-line refusal."""

from __future__ import annotations

import dataclasses

import pytest

from frontier import budget, memory
from frontier.errors import FrontierError
from frontier.testing import TINY_CONFIGS, real_shape_config, tiny_config, tiny_loaded


def _llama_8b() -> object:
    return real_shape_config("llama-3.1-8b")


def test_the_layout_of_an_8b_model() -> None:
    needs = memory.estimate(_llama_8b(), "bf16")
    n = 14337
    assert memory.mlp_shape(_llama_8b()) == (32, 4096, 14336)
    assert needs.weights == 8_030_261_248 * 2  # Llama-3.1-8B's parameter count, in bf16
    assert needs.statistics == 32 * (3 * 14336 + 2 * n * n) * 8  # ~105 GB of float64 Grams
    # L[:s-1, :s-1], Y[:, :s-1], P[s:, :], B and Q[:, s:], s = n // 2 + 1: the blocks read
    s = 7169
    kept = (s - 1) ** 2 + (n - s) * n + 4096 * ((s - 1) + n + (n - s))
    assert needs.refit_factors == 32 * kept * 4  # 35 GB, against 64 GB of whole squares
    compact = memory.estimate(_llama_8b(), "bf16", compact=True)  # a GPU's factors
    # two layers share one P matrix (LayerRefit.share_p)
    assert compact.refit_factors == (16 * n * n + 32 * 2 * 4096 * n) * 4
    # the Gram and four squares, and the float64 weight, its product with the Gram and a copy
    assert needs.refit_setup == compact.refit_setup == (5 * n * n + 3 * 4096 * n) * 8
    assert needs.host(factors_on_device=True) == needs.statistics
    assert needs.host(factors_on_device=False) == needs.statistics + needs.refit_factors
    plain = memory.estimate(_llama_8b(), "bf16", refit=False)
    assert plain.statistics == 32 * 3 * 14336 * 8 and plain.refit_factors == 0
    obs = memory.estimate(_llama_8b(), "bf16", refit=False, grams=True)  # obs reads Grams
    assert obs.statistics == needs.statistics and obs.refit_factors == 0


@pytest.mark.parametrize("model_type", sorted(TINY_CONFIGS))
def test_every_family_has_the_shape_its_adapter_sees(model_type: str) -> None:
    lm = tiny_loaded(model_type)
    handles = lm.adapter.handles(lm.model)
    layers, hidden, width = memory.mlp_shape(tiny_config(model_type))
    assert (layers, width) == (len(handles), max(h.width for h in handles))
    assert hidden == lm.model.get_input_embeddings().weight.shape[1]


def test_a_budget_below_one_layer_at_a_time_is_a_one_line_error() -> None:
    with pytest.raises(
        FrontierError, match=r"needs about 2[0-9]\.[0-9] GiB of host memory even"
    ) as err:
        memory.plan_layout(_llama_8b(), "bf16", budget=16 * memory.GIB)
    assert "\n" not in str(err.value) and "--no-refit --criterion energy" in str(err.value)


def test_the_layout_fills_the_budget_and_no_more() -> None:
    """Everything in memory without a budget; with one, as many Gram sums per pass and
    factors in memory as fit it, every estimated peak within it."""
    config = real_shape_config("llama-3.2-1b")
    layers, hidden, width = memory.mlp_shape(config)
    full = memory.plan_layout(config, "fp32")
    assert (full.gram_layers, full.factor_layers, full.passes, full.lean) == (16, 16, 1, False)
    for gib in (12, 16, 24, 40):
        budget = gib * memory.GIB
        layout = memory.plan_layout(config, "fp32", budget=budget)
        peaks = layout.peaks(width=width, hidden=hidden)
        assert max(peaks.values()) <= budget
        more = dataclasses.replace(
            layout, gram_layers=layout.gram_layers + 1, factor_layers=layout.factor_layers + 1
        ).peaks(width=width, hidden=hidden)
        assert layout.gram_layers == layers or more["calibration"] > budget
        assert layout.factor_layers == layers or max(more["setup"], more["trial"]) > budget
    assert memory.plan_layout(config, "fp32", budget=12 * memory.GIB).lean


def test_an_8b_model_in_bf16_on_a_gpu_and_a_48_gb_host() -> None:
    """Every stage fits a 24 GiB GPU: the float64 set-up (9 GiB a layer) runs on the host
    there, and a trial parks the unpruned MLPs its pruned copies have no room beside (10.5
    GiB in bf16) in host memory; a 40 GiB GPU sets up on the device and parks a few, an
    80 GiB one none. The host's part fits 70% of 48 GiB each time."""
    layers, hidden, width = memory.mlp_shape(_llama_8b())
    per_layer_mlp = 3 * hidden * width * 2
    host = budget.DEFAULT_SHARE * 48 * memory.GIB
    for gpu_gib, parked_layers in ((24, 31), (40, 6), (80, 0)):
        gpu = gpu_gib * memory.GIB
        layout = memory.plan_layout(
            _llama_8b(), "bf16", compact=True, on_gpu=True, budget=int(host), gpu_bytes=gpu
        )
        peaks = layout.peaks(width=width, hidden=hidden, on_gpu=True, gpu_bytes=gpu)
        assert max(peaks.values()) <= host and layout.factor_layers == layers
        parked = layout.parked_bytes(width=width, hidden=hidden, gpu_bytes=gpu)
        assert parked == parked_layers * per_layer_mlp
        on_host = peaks["setup"] - peaks["trial"] == layout.needs.refit_setup - parked
        assert on_host == (gpu_gib == 24)
        peak = layout.gpu_peak(width=width, hidden=hidden, gpu_bytes=gpu)
        assert peak <= gpu - memory.CUDA_CONTEXT
        factors = layout.gpu_factor_bytes(gpu)
        trial = layout.needs.weights + layout.trial_bytes(width=width, hidden=hidden)
        assert trial + factors > gpu - memory.CUDA_CONTEXT or not parked  # parks only if it must
        assert peak >= trial + factors - parked


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("compact", [False, True])
def test_the_estimate_counts_the_factors_refit_layers_hold(compact: bool, layers: int) -> None:
    """The estimate's factor formula is the layout of :class:`LayerRefit` (with a bias
    column, as the estimate assumes), compact layers paired as :meth:`Refitter.build`
    pairs them: a change to either shows here."""
    import torch

    from frontier.pruning.refit import LayerRefit

    width, hidden = 12, 5
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, width, generator=gen, dtype=torch.float64)
    x = torch.cat([a, torch.ones(400, 1, dtype=torch.float64)], dim=1)
    w = torch.randn(hidden, width, generator=gen, dtype=torch.float64)
    held = [
        LayerRefit(
            w, torch.zeros(hidden), x.t() @ x / 400, 1e-2, torch.arange(width), compact=compact
        )
        for _ in range(layers)
    ]
    if layers > 1:
        assert held[0].share_p(held[1]) == compact
    config = tiny_config("llama")
    config.num_hidden_layers, config.hidden_size, config.intermediate_size = layers, hidden, width
    need = memory.estimate(config, "fp32", compact=compact).refit_factors
    assert need == sum(layer.factor_bytes() for layer in held)


def test_a_lean_trial_holds_the_blocks_of_two_layers() -> None:
    """The most a trial reads of one layer on disk is :func:`memory.read_block_bytes`
    (the blocks :meth:`LayerRefit.blocks` names, at their largest kept count), and a trial
    with factors on disk holds two such sets (the layer refitted, the next read ahead);
    with every layer in memory, none."""
    import torch

    from frontier.pruning.refit import LayerRefit

    width, hidden = 12, 5  # I + 1 = 13 with the bias column: the bound is reached
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, width, generator=gen, dtype=torch.float64)
    x = torch.cat([a, torch.ones(400, 1, dtype=torch.float64)], dim=1)
    w = torch.randn(hidden, width, generator=gen, dtype=torch.float64)
    layer = LayerRefit(w, torch.zeros(hidden), x.t() @ x / 400, 1e-2, torch.arange(width))
    read = [
        sum(getattr(layer, name)[index].numel() * 4 for name, index in blocks.items())
        for blocks in (layer.blocks(k) for k in range(1, width))
    ]
    assert max(read) == memory.read_block_bytes(hidden, width)

    config = real_shape_config("llama-3.2-1b")
    layers, hidden, width = memory.mlp_shape(config)
    layout = memory.plan_layout(config, "fp32", budget=16 * memory.GIB)
    assert 0 < layout.factor_layers < layers
    per = layout.needs.refit_factors // layers
    lean = layout.peaks(width=width, hidden=hidden)["trial"]
    every = dataclasses.replace(layout, factor_layers=layers).peaks(width=width, hidden=hidden)
    blocks = 2 * memory.read_block_bytes(hidden, width)
    # the blocks are let go before the evaluation's logits are made: the larger counts
    logits = memory.trial_logits_bytes(layout.vocab)
    assert every["trial"] - lean == (layers - layout.factor_layers) * per - (
        max(blocks, logits) - logits
    )
    # a shape whose blocks outgrow the logits (a wide layer, a small vocabulary)
    wide = dataclasses.replace(layout, vocab=64)
    assert (
        wide.peaks(width=width, hidden=hidden)["trial"]
        - dataclasses.replace(wide, factor_layers=layers).peaks(width=width, hidden=hidden)["trial"]
        == blocks - memory.trial_logits_bytes(64) - (layers - layout.factor_layers) * per
    )
