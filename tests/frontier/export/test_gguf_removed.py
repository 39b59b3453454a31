"""GGUF exports of plans that remove whole MLPs: a removed MLP is written as the fewest
zero neurons its type allows (llama.cpp's ``deci`` reads ``n_ff = 0`` as "skip the whole
layer", attention included), and llama.cpp gives the pruned model's log-probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from frontier.export import export_model
from frontier.export import llamacpp as _llamacpp
from frontier.export._gguf import built_widths
from frontier.export._gguf_arch import FAMILIES
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import HIDDEN, tiny_loaded

gguf = pytest.importorskip("gguf")

REMOVED = (0, 40, 0)  # two of the three MLPs removed, the last layer's among them
needs_llamacpp = pytest.mark.skipif(
    _llamacpp.find() is None, reason="llama.cpp not built (frontier llamacpp build)"
)


@pytest.mark.parametrize(
    "gguf_type, multiple, want",
    [
        ("f32", None, [1, 40, 1, 64]),
        ("f16", None, [1, 64, 1, 64]),  # 40 leaves a scalar tail longer than 24 zeros
        ("q8_0", None, [32, 64, 32, 64]),
        ("q4_k_m", None, [32, 64, 32, 64]),
        ("f32", 16, [16, 48, 16, 64]),
    ],
)
def test_a_removed_mlp_is_built_as_the_fewest_zero_neurons(
    gguf_type: str, multiple: int | None, want: list[int]
) -> None:
    widths = [*REMOVED, 64]
    assert built_widths(widths, "exact", gguf_type, multiple) == want
    assert built_widths([0, 0], "uniform", gguf_type, multiple) == [want[0]] * 2


def _export(lm: Any, out: Path, **kw: Any) -> Any:
    full = lm.adapter.full_widths(lm.model)
    gen = torch.Generator().manual_seed(5)
    pruner = Pruner(lm.model, [torch.rand(w, generator=gen) for w in full])
    return export_model(lm, pruner.select(Plan(REMOVED, full)), out, format="gguf", **kw)


def test_the_file_holds_one_zero_neuron_per_removed_mlp(tmp_path: Path) -> None:
    result = _export(tiny_loaded("llama"), tmp_path / "out")
    written = result.gguf
    assert (written.arch, written.layout) == ("deci", "exact")
    assert written.widths == (1, 40, 1) and written.pruned == REMOVED
    assert "rounded" not in written.message  # the 40-wide layer is exact
    (note,) = [n for n in written.notes if "removed MLPs" in n]
    assert note.startswith("2 removed MLPs (layers 0, 2) are written as 1 zero neurons each")
    reader = gguf.GGUFReader(str(written.path))
    assert list(reader.fields["deci.feed_forward_length"].contents()) == [1, 40, 1]
    tensors = {t.name: t for t in reader.tensors}
    for name in ("ffn_gate", "ffn_up", "ffn_down"):
        t = tensors[f"blk.0.{name}.weight"]
        assert sorted(int(x) for x in t.shape) == [1, HIDDEN]
        assert not np.asarray(t.data).any()
    assert "blk.0.ffn_norm.weight" in tensors  # llama.cpp builds the (no-op) FFN


@needs_llamacpp
@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "qwen3", "gemma3_text"])
def test_llamacpp_runs_a_model_with_two_mlps_removed(
    family: str, tmp_path: Path, llamacpp_tiny: Any
) -> None:
    result = _export(llamacpp_tiny(family), tmp_path / "out")
    check = result.llamacpp
    assert check.checked
    atol = FAMILIES[family].f32_atol
    assert check.max_abs_logprob_diff <= atol  # 3.5e-6 on the tiny llama
    assert abs(check.ppl_llamacpp / check.ppl_transformers - 1) < atol
    layout = "exact" if FAMILIES[family].per_layer_arch else "padded"
    assert result.gguf.layout == layout
    assert result.gguf.widths == ((1, 40, 1) if layout == "exact" else (40, 40, 40))


@needs_llamacpp
def test_a_quantized_file_with_removed_mlps_runs_in_llamacpp(tmp_path: Path) -> None:
    result = _export(tiny_loaded("llama"), tmp_path / "out", gguf_type="q8_0")
    assert result.llamacpp.checked and result.gguf.widths == (32, 64, 32)
    assert result.gguf.kept_f16 == ()  # every MLP row is whole q8_0 blocks
    assert np.isfinite(result.llamacpp.ppl_llamacpp)
