"""What each format writes: configs, padding, dtypes, the remote-code file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from frontier.export import RECORD_NAME, Provenance, apply_compression, export_model, load_pruned
from frontier.export._modeling import MODELING_FILE
from frontier.export._tensors import padded_down, padded_up
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import WIDTH, tiny_loaded


def _pruner(family: str) -> tuple[object, Pruner, tuple[int, ...]]:
    lm = tiny_loaded(family)
    full = lm.adapter.full_widths(lm.model)
    return lm, Pruner(lm.model, [torch.rand(w) for w in full]), full


def test_heterogeneous_config_and_modeling_file(tmp_path: Path) -> None:
    lm, pruner, full = _pruner("llama")
    out = export_model(lm, pruner.select(Plan((16, 40, WIDTH), full)), tmp_path / "h").path  # type: ignore[arg-type]
    config = json.loads((out / "config.json").read_text())
    assert config["frontier_mlp_widths"] == [16, 40, WIDTH]
    assert config["intermediate_size"] == WIDTH
    assert {int(k): v for k, v in config["per_layer_config"].items()} == {
        0: {"intermediate_size": 16},
        1: {"intermediate_size": 40},
    }
    assert config["auto_map"]["AutoModelForCausalLM"].startswith(MODELING_FILE[:-3] + ".")
    source = (out / MODELING_FILE).read_text()
    assert "import frontier" not in source and "from frontier" not in source  # self-contained
    assert "from transformers import LlamaForCausalLM as _Base" in source


def test_heterogeneous_needs_its_loader(tmp_path: Path) -> None:
    """Stock code without the modeling file fails loudly rather than building wrong shapes."""
    from transformers import AutoModelForCausalLM

    lm, pruner, full = _pruner("llama")
    out = export_model(lm, pruner.select(Plan((16, 40, WIDTH), full)), tmp_path / "h").path  # type: ignore[arg-type]
    with pytest.raises(Exception, match="per-layer"):
        AutoModelForCausalLM.from_pretrained(out)


@pytest.mark.parametrize("family", ["llama", "phi3", "gpt2", "opt"])
def test_padding_rows_and_columns_are_zero(family: str, tmp_path: Path) -> None:
    lm, pruner, full = _pruner(family)
    out = export_model(
        lm,
        pruner.select(Plan((16, 40, 24), full)),
        tmp_path / "p",  # type: ignore[arg-type]
        format="padded",
    ).path
    adapter = lm.adapter  # type: ignore[attr-defined]
    config = json.loads((out / "config.json").read_text())
    assert config[adapter.width_key] == 40
    model, _ = load_pruned(out)
    for h in adapter.handles(model):
        assert h.width == 40
        kept = (16, 40, 24)[h.index]
        down = h.down_module.weight
        down_pad = down[kept:] if family == "gpt2" else down[:, kept:]
        assert torch.count_nonzero(down_pad) == 0


def test_pad_functions_keep_outputs() -> None:
    from frontier.arch import WeightLayout

    up = torch.nn.Linear(4, 6)
    down = torch.nn.Linear(6, 4)
    x = torch.randn(3, 4)
    big_up = padded_up(up, 9, WeightLayout.LINEAR, fused=False)
    big_down = padded_down(down, 9, WeightLayout.LINEAR)
    assert big_up.weight.shape == (9, 4) and big_up.bias.shape == (9,)
    assert big_down.weight.shape == (4, 9)
    assert up.weight.shape == (6, 4)  # inputs untouched
    act = torch.nn.functional.gelu
    torch.testing.assert_close(big_down(act(big_up(x))), down(act(up(x))))
    fused = torch.nn.Linear(4, 12)  # gate rows 0-5, up rows 6-11
    big = padded_up(fused, 9, WeightLayout.LINEAR, fused=True)
    assert torch.equal(big.weight[:6], fused.weight[:6])
    assert torch.equal(big.weight[9:15], fused.weight[6:])
    assert torch.count_nonzero(big.weight[6:9]) == 0 and torch.count_nonzero(big.weight[15:]) == 0


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_half_precision_export_and_apply(
    dtype: str,
    tmp_path: Path,
    same_tensors: Callable[[Path, Path], None],
    tensors_of: Callable[[Path], dict[str, torch.Tensor]],
) -> None:
    lm, pruner, full = _pruner("qwen2")
    selection = pruner.select(Plan((16, 40, 24), full))
    result = export_model(lm, selection, tmp_path / "h", dtype=dtype)  # type: ignore[arg-type]
    tensors = tensors_of(result.path)
    want = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    assert {t.dtype for t in tensors.values()} == {want}
    model, _ = load_pruned(result.path)
    assert next(model.parameters()).dtype == want
    # its logits are the pruned model's with every weight rounded to the dtype
    model_ = lm.model  # type: ignore[attr-defined]
    ids = torch.randint(3, 300, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = model.float()(input_ids=ids).logits
        unpruned = model_(input_ids=ids).logits
        with pruner.pruned(selection):
            rounded = {k: v.to(want).float() for k, v in model_.state_dict().items()}
            want_logits = torch.func.functional_call(model_, rounded, (ids,)).logits
    assert torch.allclose(got, want_logits, atol=1e-4, rtol=1e-4)
    assert float((unpruned - want_logits).abs().max()) > 1e-2  # the check can tell
    again = apply_compression(result.path, lm, tmp_path / "again")  # type: ignore[arg-type]
    assert again.record.dtype == dtype
    same_tensors(result.path, again.path)


def test_provenance_is_recorded_and_carried_by_apply(
    tmp_path: Path, same_tensors: Callable[[Path, Path], None]
) -> None:
    lm, pruner, full = _pruner("gpt2")
    prov = Provenance(
        criterion="wanda", calibration_fingerprint="abc", study="s1", trial=7, metrics={"ppl": 12.5}
    )
    sel = pruner.select(Plan((16, 16, 16), full))
    result = export_model(lm, sel, tmp_path / "u", format="uniform", provenance=prov)  # type: ignore[arg-type]
    record = json.loads((result.path / RECORD_NAME).read_text())
    assert record["criterion"] == "wanda" and record["trial"] == 7
    assert record["metrics"] == {"ppl": 12.5}
    again = apply_compression(result.path, lm, tmp_path / "again")  # type: ignore[arg-type]
    assert again.record.provenance == prov
    assert again.record.export_format == "uniform"
    same_tensors(result.path, again.path)
    other = apply_compression(result.path, lm, tmp_path / "het", format="heterogeneous")  # type: ignore[arg-type]
    assert other.record.export_format == "heterogeneous"


def test_heterogeneous_generates_like_the_pruned_model(tmp_path: Path) -> None:
    """KV-cache decoding (not only one forward pass) works on the per-layer-width model."""
    lm, pruner, full = _pruner("gemma3_text")
    selection = pruner.select(Plan((16, 40, WIDTH), full))
    out = export_model(lm, selection, tmp_path / "h").path  # type: ignore[arg-type]
    ids = torch.tensor([[5, 6, 7, 8]])
    kwargs = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": 0}
    with pruner.pruned(selection):
        expected = lm.model.generate(ids, **kwargs)  # type: ignore[attr-defined]
    model, _ = load_pruned(out)
    assert model.generate(ids, **kwargs).tolist() == expected.tolist()
