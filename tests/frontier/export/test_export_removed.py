"""Exports of plans that remove whole MLPs (width 0): heterogeneous checkpoints reload to
the in-memory pruned model through both loaders, ``apply`` (the API and the CLI)
rebuilds them bit for bit, and the stock formats refuse them in one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from frontier.cli import main
from frontier.data.text import TokenSet
from frontier.errors import FrontierError
from frontier.export import RECORD_NAME, ExportFormat, apply_compression, export_model, load_pruned
from frontier.importance import compute_scores
from frontier.models import fingerprint_model, load_model
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner, Selection
from frontier.testing import TINY_CONFIGS, tiny_loaded

REMOVED = (0, 40, 0)  # two of the three MLPs removed
IDS = torch.randint(3, 300, (2, 11), generator=torch.Generator().manual_seed(1))


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS, use_cache=False).logits.float()


def _selection(lm: Any, widths: tuple[int, ...] = REMOVED) -> tuple[Pruner, Selection]:
    full = lm.adapter.full_widths(lm.model)
    gen = torch.Generator().manual_seed(2)
    pruner = Pruner(lm.model, [torch.rand(w, generator=gen) for w in full])
    return pruner, pruner.select(Plan(widths, full))


def _remote_code(folder: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()


def test_a_llama_with_two_mlps_removed_reloads_to_the_pruned_model(
    tmp_path: Path, tensors_of: Callable[[Path], dict[str, torch.Tensor]]
) -> None:
    lm = tiny_loaded("llama")
    before, dense = fingerprint_model(lm.model), _logits(lm.model)
    pruner, selection = _selection(lm)
    with pruner.pruned(selection):
        expected = _logits(lm.model)
    assert not torch.allclose(expected, dense, atol=1e-3)
    result = export_model(lm, selection, tmp_path / "out")
    assert fingerprint_model(lm.model) == before
    assert result.max_abs_logit_diff == 0.0  # the export's own check: both loaders
    for model in (load_pruned(result.path)[0], _remote_code(result.path)):
        layers: Any = model.model.layers  # type: ignore[union-attr]
        assert [layer.mlp.down_proj.in_features for layer in layers] == list(REMOVED)
        assert torch.equal(_logits(model), expected)
    config = json.loads((result.path / "config.json").read_text())
    assert config["frontier_mlp_widths"] == list(REMOVED)
    tensors = tensors_of(result.path)
    assert tensors["model.layers.0.mlp.down_proj.weight"].shape == (32, 0)
    assert tensors["model.layers.2.mlp.gate_proj.weight"].shape == (0, 32)
    record = json.loads((result.path / RECORD_NAME).read_text())
    assert record["plan"]["widths"] == list(REMOVED) and record["kept"][0] == []


@pytest.mark.parametrize("family", sorted(TINY_CONFIGS))
def test_every_family_exports_removed_mlps_and_apply_rebuilds_them(
    family: str, tmp_path: Path, same_tensors: Callable[[Path, Path], None]
) -> None:
    lm = tiny_loaded(family)
    pruner, selection = _selection(lm)
    with pruner.pruned(selection):
        expected = _logits(lm.model)
    result = export_model(lm, selection, tmp_path / "out")
    assert result.max_abs_logit_diff == 0.0
    torch.testing.assert_close(_logits(load_pruned(result.path)[0]), expected, atol=0, rtol=0)
    again = apply_compression(result.path, lm, tmp_path / "again")
    same_tensors(result.path, again.path)


@pytest.mark.parametrize("family", ["gpt2", "falcon"])
def test_a_refitted_removed_mlp_reloads_with_the_solved_bias(family: str, tmp_path: Path) -> None:
    lm = tiny_loaded(family)
    ids = torch.randint(0, 300, (16, 16), generator=torch.Generator().manual_seed(3))
    scores = compute_scores(lm, "energy", TokenSet(ids, "r", "calibration", 16, "r"), grams=True)
    op = PruningOperator(lm.model, scores, refit=True, alphas=[1.0] * 3)
    selection = op.select(Plan(REMOVED, op.full))
    refit = op.weights(selection)
    assert refit is not None and refit[0] is not None and refit[0].bias is not None
    with op.pruned(selection):
        expected = _logits(lm.model)
    result = export_model(lm, selection, tmp_path / "out", refit=refit)
    for model in (load_pruned(result.path)[0], _remote_code(result.path)):
        assert torch.equal(_logits(model), expected)
        down: Any = lm.adapter.handles(model)[0].down_module
        assert torch.equal(down.bias, refit[0].bias)
    again = apply_compression(result.path, lm, tmp_path / "again")
    assert torch.equal(_logits(load_pruned(again.path)[0]), expected)


@pytest.mark.parametrize(
    "fmt, widths",
    [("padded", REMOVED), ("uniform", REMOVED), ("uniform", (0, 0, 0)), ("padded", (0, 64, 64))],
)
def test_stock_formats_refuse_a_removed_mlp_in_one_line(
    fmt: ExportFormat, widths: tuple[int, ...], tmp_path: Path
) -> None:
    lm = tiny_loaded("llama")
    before = fingerprint_model(lm.model)
    _, selection = _selection(lm, widths)
    with pytest.raises(FrontierError) as exc:
        export_model(lm, selection, tmp_path / "out", format=fmt)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"format {fmt} cannot remove whole MLPs (this plan removes layers ")
    assert "use format heterogeneous or gguf" in message
    assert not (tmp_path / "out").exists() and fingerprint_model(lm.model) == before


def test_apply_of_a_heterogeneous_export_refuses_a_stock_format_in_one_line(tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    _, selection = _selection(lm)
    exported = export_model(lm, selection, tmp_path / "out").path
    with pytest.raises(FrontierError, match=r"^format padded cannot remove whole MLPs \(.*0, 2\)"):
        apply_compression(exported, lm, tmp_path / "padded", format="padded")


def test_the_cli_applies_a_record_with_removed_mlps(
    tiny_folder: Path, tmp_path: Path, same_tensors: Callable[[Path, Path], None]
) -> None:
    """``frontier apply`` reads the plan of ``compression.json`` (widths 0 included)."""
    lm = load_model(str(tiny_folder))
    _, selection = _selection(lm)
    out, again = tmp_path / "out", tmp_path / "again"
    export_model(lm, selection, out)
    record = out / RECORD_NAME
    assert main(["apply", str(record), "--model", str(tiny_folder), "--out", str(again)]) == 0
    same_tensors(out, again)
    model = load_pruned(again)[0]
    assert [layer.mlp.down_proj.in_features for layer in model.model.layers] == list(REMOVED)  # type: ignore[union-attr]
    argv = ["apply", str(record), "--model", str(tiny_folder), "--format", "uniform"]
    assert main([*argv, "--out", str(tmp_path / "uniform")]) == 2
    assert not (tmp_path / "uniform").exists()
