"""Refitted exports of families whose down projection has a bias: the bias the refit
solved (not the one the layer had) is what every reload of the export holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from frontier.arch import adapter_for
from frontier.data.text import TokenSet
from frontier.export import (
    RECORD_NAME,
    ExportFormat,
    apply_compression,
    export_model,
    load_pruned,
)
from frontier.importance import compute_scores
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.testing import WIDTH, tiny_loaded

BIASED = ("falcon", "gpt2", "gpt_neox", "opt")
WIDTHS = (16, 40, WIDTH)  # the last layer is not pruned: it keeps the bias it had


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits.float()


def _down_biases(model: Any) -> list[torch.Tensor]:
    downs: list[Any] = [h.down_module for h in adapter_for(model.config).handles(model)]
    return [down.bias.detach().clone() for down in downs]


@pytest.mark.parametrize("fmt", ["heterogeneous", "padded"])
@pytest.mark.parametrize("family", BIASED)
def test_the_export_and_its_rebuild_hold_the_refitted_down_biases(
    family: str, fmt: ExportFormat, tmp_path: Path
) -> None:
    lm = tiny_loaded(family)
    gen = torch.Generator().manual_seed(100)
    with torch.no_grad():  # large random down biases, set explicitly
        for h in lm.adapter.handles(lm.model):
            bias: Any = h.down_module.bias
            bias.copy_(torch.randn(bias.shape, generator=gen))
    original = _down_biases(lm.model)
    ids = torch.randint(0, 300, (16, 16), generator=torch.Generator().manual_seed(3))
    scores = compute_scores(lm, "energy", TokenSet(ids, "r", "calibration", 16, "r"), grams=True)
    op = PruningOperator(lm.model, scores, refit=True, alphas=[1.0] * len(original))
    selection = op.select(Plan(WIDTHS, op.full, multiple=4, floor=4))
    refit = op.weights(selection)
    assert refit is not None
    assert refit[2] is None
    want = []  # every layer's down bias: the refitted one where the layer is pruned
    for old, new in zip(original, refit, strict=True):
        if new is None:
            want.append(old)
            continue
        assert new.bias is not None and (new.bias - old).abs().max() > 0.1  # the refit moved it
        want.append(new.bias)
    probe = ids[:2, :11]
    with op.pruned(selection):
        expected = _logits(lm.model, probe)
        assert all(torch.equal(a, b) for a, b in zip(_down_biases(lm.model), want, strict=True))

    result = export_model(lm, selection, tmp_path / "out", format=fmt, refit=refit)
    again = apply_compression(result.path / RECORD_NAME, lm, tmp_path / "again")
    for folder in (result.path, again.path):
        reloaded = load_pruned(folder)[0]
        for i, (got, expect) in enumerate(zip(_down_biases(reloaded), want, strict=True)):
            assert torch.equal(got, expect), (folder.name, i)
        torch.testing.assert_close(_logits(reloaded, probe), expected, atol=1e-5, rtol=1e-5)
