"""The params objective against parameter counts worked out by hand for the tiny models."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import HIDDEN as H
from frontier.testing import LAYERS as L
from frontier.testing import VOCAB as V
from frontier.testing import WIDTH as I
from frontier.testing import tiny_loaded
from objectives import create

KV = 2 * 8  # two key/value heads of head_dim 8 (llama, phi3)


def _llama_mlp(w: int) -> int:
    return 3 * H * w  # gate, up, down; no biases


def _gpt2_mlp(w: int) -> int:
    return (H * w + w) + (w * H + H)  # Conv1D c_fc and c_proj, both with biases


def _opt_mlp(w: int) -> int:
    return (H * w + w) + (w * H + H)  # fc1 and fc2, both with biases


def _phi3_mlp(w: int) -> int:
    return 2 * w * H + w * H  # fused gate_up [2w, H] and down [H, w]; no biases


# Everything outside the MLPs, per family, from the module shapes of the tiny configs.
NON_MLP = {
    # untied embed + lm_head; q, o [H, H]; k, v [KV, H]; two RMSNorms per layer; final norm
    "llama": 2 * V * H + L * (2 * H * H + 2 * KV * H + 2 * H) + H,
    # tied wte once; wpe 1024 positions; LN (w+b) x2, c_attn [H, 3H]+b, c_proj [H, H]+b; ln_f
    "gpt2": V * H + 1024 * H + L * (4 * H + (3 * H * H + 3 * H) + (H * H + H)) + 2 * H,
    # tied embed once; 2048+2 learned positions; q, k, v, out with biases; 2 LNs; final LN
    "opt": V * H + 2050 * H + L * (4 * (H * H + H) + 4 * H) + 2 * H,
    # untied embed + lm_head; fused qkv [H + 2 KV, H]; o [H, H]; two RMSNorms; final norm
    "phi3": 2 * V * H + L * ((H + 2 * KV) * H + H * H + 2 * H) + H,
}
MLP: dict[str, Callable[[int], int]] = {
    "llama": _llama_mlp,
    "gpt2": _gpt2_mlp,
    "opt": _opt_mlp,
    "phi3": _phi3_mlp,
}


@pytest.mark.parametrize("family", sorted(MLP))
def test_unpruned_counts_are_exact(family: str) -> None:
    lm = tiny_loaded(family)
    obj = create("params")
    obj.prepare(lm)
    m = obj.evaluate(lm)
    mlp = L * MLP[family](I)
    total = NON_MLP[family] + mlp
    assert m.details["baseline_mlp_params"] == m.details["mlp_params"] == mlp
    assert m.details["baseline_total_params"] == m.details["total_params"] == total
    assert m.details["fp16_bytes"] == m.details["baseline_fp16_bytes"] == 2 * total
    assert m.value == 1.0
    assert m.raw == m.baseline == total
    assert m.details["mlp_removed_fraction"] == 0.0


@pytest.mark.parametrize("family", sorted(MLP))
def test_pruned_counts_are_exact(family: str) -> None:
    lm = tiny_loaded(family)
    obj = create("params")
    obj.prepare(lm)
    widths = (16, 40, 64)  # one layer untouched
    gen = torch.Generator().manual_seed(1)
    pruner = Pruner(lm.model, [torch.rand(I, generator=gen) for _ in range(L)])
    with pruner.pruned(Plan(widths, (I,) * L)):
        m = obj.evaluate(lm)
    mlp_full = L * MLP[family](I)
    mlp = sum(MLP[family](w) for w in widths)
    total_full = NON_MLP[family] + mlp_full
    total = NON_MLP[family] + mlp
    assert m.details["mlp_params"] == mlp
    assert m.details["total_params"] == total
    assert m.details["fp16_bytes"] == 2 * total
    assert m.details["baseline_fp16_bytes"] == 2 * total_full
    assert m.value == total / total_full
    assert m.details["mlp_removed_fraction"] == pytest.approx(1 - mlp / mlp_full)
    assert obj.evaluate(lm).value == 1.0  # restored


def test_tied_embeddings_are_counted_once() -> None:
    lm = tiny_loaded("gpt2")
    assert lm.model.lm_head.weight is lm.model.transformer.wte.weight
    obj = create("params")
    obj.prepare(lm)
    assert obj.evaluate(lm).details["total_params"] == NON_MLP["gpt2"] + L * _gpt2_mlp(I)
