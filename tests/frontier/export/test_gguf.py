"""GGUF export: which layout every family gets, and that the file holds the pruned model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from frontier.errors import FrontierError
from frontier.export import RECORD_NAME, apply_compression, export_model, read_record
from frontier.export import llamacpp as _llamacpp
from frontier.export._gguf import built_widths
from frontier.export._gguf_arch import FAMILIES, NOT_WRITTEN, rope_pairs
from frontier.export._gguf_vocab import BYTE, CONTROL, NORMAL, UNKNOWN, _pre_name, vocab_of
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import (
    HIDDEN,
    TINY_CONFIGS,
    WIDTH,
    tiny_loaded,
    tiny_sentencepiece_tokenizer,
    tiny_tokenizer,
)

gguf = pytest.importorskip("gguf")

PLAN = (16, 40, WIDTH)  # per-layer widths; 16 and 40 are not whole q8_0 blocks of 32
# what each family becomes in llama.cpp for PLAN: (architecture, layout), or None
EXPECTED: dict[str, tuple[str, str] | None] = {
    "llama": ("deci", "exact"),
    "mistral": ("deci", "exact"),
    "qwen2": ("deci", "exact"),
    "qwen3": ("qwen3", "padded"),
    "gemma3_text": ("gemma3", "padded"),
    "gemma": None,
    "gemma2": None,
    "phi3": None,
    "gpt2": None,
    "opt": None,
    "gpt_neox": None,
    "falcon": None,
}


def _export(lm: Any, out: Path, widths: tuple[int, ...] = PLAN, **kw: Any) -> Any:
    full = lm.adapter.full_widths(lm.model)
    pruner = Pruner(
        lm.model,
        [torch.rand(w, generator=torch.Generator().manual_seed(i)) for i, w in enumerate(full)],
    )
    selection = pruner.select(Plan(widths, full))
    return selection, export_model(lm, selection, out, format="gguf", **kw)


def _reader(path: Path) -> Any:
    return gguf.GGUFReader(str(path))


def _field(reader: Any, key: str) -> Any:
    return reader.fields[key].contents()


def _tensor(reader: Any, name: str) -> Any:
    (t,) = [t for t in reader.tensors if t.name == name]
    return t


def test_every_family_is_declared() -> None:
    assert set(EXPECTED) == set(TINY_CONFIGS)
    assert set(FAMILIES) | set(NOT_WRITTEN) >= set(TINY_CONFIGS)


@pytest.mark.parametrize("family", sorted(TINY_CONFIGS))
def test_family_layout_and_shapes(family: str, tmp_path: Path, llamacpp_tiny: Any) -> None:
    lm = llamacpp_tiny(family)
    expected = EXPECTED[family]
    if expected is None:
        with pytest.raises(FrontierError, match=f"not available for {family}"):
            _export(lm, tmp_path / "out")
        assert not (tmp_path / "out").exists()
        return
    arch, layout = expected
    _, result = _export(lm, tmp_path / "out")
    assert (result.gguf.arch, result.gguf.layout) == (arch, layout)
    reader = _reader(result.gguf.path)
    assert _field(reader, "general.architecture") == arch
    ff = _field(reader, f"{arch}.feed_forward_length")
    built = list(PLAN) if layout == "exact" else [max(PLAN)] * len(PLAN)
    assert (list(ff) if isinstance(ff, list) else [ff] * len(PLAN)) == built
    for i, width in enumerate(built):
        # GGUF lists dimensions innermost first: [in, out]
        assert [int(x) for x in _tensor(reader, f"blk.{i}.ffn_gate.weight").shape] == [
            HIDDEN,
            width,
        ]
        assert [int(x) for x in _tensor(reader, f"blk.{i}.ffn_down.weight").shape] == [
            width,
            HIDDEN,
        ]
    if layout == "padded":
        assert "zero-padded" in result.gguf.message


@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_f32_tensors_are_the_pruned_weights(
    family: str, tmp_path: Path, llamacpp_tiny: Any
) -> None:
    lm = llamacpp_tiny(family)
    selection, result = _export(lm, tmp_path / "out")
    reader = _reader(result.gguf.path)
    pruner = Pruner(lm.model, [torch.zeros(w) for w in lm.adapter.full_widths(lm.model)])
    with pruner.pruned(selection):
        for i, layer in enumerate(lm.model.model.layers):
            down = layer.mlp.down_proj.weight.detach().numpy()
            got = np.asarray(_tensor(reader, f"blk.{i}.ffn_down.weight").data)
            np.testing.assert_array_equal(got[:, : down.shape[1]], down)
            assert not got[:, down.shape[1] :].any()  # padding (qwen3) is zero
            assert result.gguf.layout != "exact" or got.shape == down.shape
        emb = lm.model.model.embed_tokens.weight.detach().numpy()
        np.testing.assert_array_equal(np.asarray(_tensor(reader, "token_embd.weight").data), emb)


def test_uniform_plan_is_plain_llama(tmp_path: Path) -> None:
    _, result = _export(tiny_loaded("llama"), tmp_path / "out", widths=(32, 32, 32))
    reader = _reader(result.gguf.path)
    assert result.gguf.layout == "uniform"
    assert _field(reader, "general.architecture") == "llama"
    assert _field(reader, "llama.feed_forward_length") == 32


def test_rope_pairs_keep_attention_scores() -> None:
    """Rotate-half RoPE on the original rows == pairwise RoPE on the reordered rows."""
    heads, d, n = 2, 8, 5
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(n, heads * d, generator=gen), torch.randn(n, heads * d, generator=gen)
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    theta = pos * 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # [n, d/2]
    cos, sin = theta.cos(), theta.sin()

    def half(x: torch.Tensor) -> torch.Tensor:  # transformers' convention
        a, b = x.double().view(n, heads, d).split(d // 2, -1)
        return torch.cat(
            [a * cos[:, None] - b * sin[:, None], b * cos[:, None] + a * sin[:, None]], -1
        )

    def pairs(x: torch.Tensor) -> torch.Tensor:  # llama.cpp's "normal" RoPE
        v = x.double().view(n, heads, d // 2, 2)
        a, b = v[..., 0], v[..., 1]
        return torch.stack(
            [a * cos[:, None] - b * sin[:, None], b * cos[:, None] + a * sin[:, None]], -1
        ).view(n, heads, d)

    def scores(qq: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ihd,jhd->hij", qq, kk)

    # the row reorder acts on weight rows; applied to activations it is the same reorder
    reorder = lambda x: torch.from_numpy(rope_pairs(x.T.numpy(), heads)).T  # noqa: E731
    want = scores(half(q), half(k))
    got = scores(pairs(reorder(q)), pairs(reorder(k)))
    torch.testing.assert_close(got, want)
    assert not torch.allclose(scores(pairs(q), pairs(k)), want)  # the reorder matters


def test_q8_0_pads_widths_to_whole_blocks(tmp_path: Path) -> None:
    """Widths 16 and 40 become 32 and 64 with zero neurons, so every MLP tensor is q8_0."""
    lm = tiny_loaded("llama")
    selection, result = _export(lm, tmp_path / "out", gguf_type="q8_0")
    assert result.gguf.widths == (32, 64, 64) and result.gguf.pruned == PLAN
    assert "40 zero neurons" in result.gguf.message
    reader = _reader(result.gguf.path)
    assert list(_field(reader, "deci.feed_forward_length")) == [32, 64, 64]
    kinds = {t.name: t.tensor_type.name for t in reader.tensors}
    assert {kinds[f"blk.{i}.ffn_{p}.weight"] for i in range(3) for p in ("gate", "up", "down")} == {
        "Q8_0"
    }
    assert kinds["blk.0.attn_norm.weight"] == "F32"
    assert result.gguf.kept_f16 == ()
    t = _tensor(reader, "blk.0.ffn_down.weight")
    values = gguf.quants.dequantize(t.data, t.tensor_type)
    pruner = Pruner(lm.model, [torch.zeros(w) for w in lm.adapter.full_widths(lm.model)])
    with pruner.pruned(selection):
        layer = lm.model.model.layers[0].mlp.down_proj.weight.detach().numpy()
    assert not values[:, 16:].any()  # the padding neurons read nothing
    # q8_0: blocks of 32 values share a scale d = max|x| / 127 stored as f16; each value
    # is off by at most d/2 plus 127 x the scale's own f16 rounding (2**-11 relative)
    d = np.abs(layer).max(axis=1, keepdims=True) / 127  # one block per row here (16 + 16 zeros)
    assert np.all(np.abs(values[:, :16] - layer) <= d * (0.5 + 127 * 2**-11))


@pytest.mark.parametrize(
    ("gguf_type", "multiple", "want"),
    [
        # f16: padded to a multiple of 64 only where that adds fewer zeros than the
        # scalar tail it removes (remainder > 32)
        ("f16", None, [832, 800, 848, 896, 64, 16, 768]),
        ("f32", None, [816, 800, 848, 880, 33, 16, 768]),  # f32 stays exact
        ("q8_0", None, [832, 800, 864, 896, 64, 32, 768]),
        ("q4_k_m", None, [832, 800, 864, 896, 64, 32, 768]),
        ("f16", 1, [816, 800, 848, 880, 33, 16, 768]),
        ("f16", 64, [832, 832, 896, 896, 64, 64, 768]),
        ("q8_0", 48, [864, 864, 864, 960, 96, 96, 768]),  # whole q8_0 blocks whatever
    ],
)
def test_built_widths(gguf_type: str, multiple: int | None, want: list[int]) -> None:
    widths = [816, 800, 848, 880, 33, 16, 768]
    assert built_widths(widths, "exact", gguf_type, multiple) == want
    assert built_widths(widths, "uniform", gguf_type, multiple) == [max(want)] * len(widths)


def test_built_widths_rejects_a_multiple_below_one() -> None:
    with pytest.raises(FrontierError, match="at least 1"):
        built_widths([16], "exact", "f16", 0)


def test_f16_pads_a_long_scalar_tail(tmp_path: Path) -> None:
    """At f16, width 40 (a 40-value tail past a 64-value SIMD step) becomes 64 with zero
    neurons; 16 (padding would add 48) stays; the outputs are the pruned model's."""
    lm = tiny_loaded("llama")
    selection, result = _export(lm, tmp_path / "out", gguf_type="f16")
    assert result.gguf.widths == (16, 64, 64) and result.gguf.pruned == PLAN
    assert "24 zero neurons" in result.gguf.message
    reader = _reader(result.gguf.path)
    assert list(_field(reader, "deci.feed_forward_length")) == [16, 64, 64]
    t = _tensor(reader, "blk.1.ffn_down.weight")
    assert t.tensor_type.name == "F16"
    values = np.asarray(t.data, dtype=np.float32)
    pruner = Pruner(lm.model, [torch.zeros(w) for w in lm.adapter.full_widths(lm.model)])
    with pruner.pruned(selection):
        layer = lm.model.model.layers[1].mlp.down_proj.weight.detach().numpy()
    assert not values[:, 40:].any()  # the padding neurons read nothing
    np.testing.assert_allclose(values[:, :40], layer, rtol=1e-3, atol=1e-4)


def test_vocab_is_written(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    lm = tiny_loaded("llama")
    lm.tokenizer = tok
    _, result = _export(lm, tmp_path / "out")
    reader = _reader(result.gguf.path)
    tokens = _field(reader, "tokenizer.ggml.tokens")
    assert len(tokens) == lm.model.config.vocab_size
    assert all(tokens[i] == t for t, i in tok.get_vocab().items())
    assert _field(reader, "tokenizer.ggml.model") == "gpt2"
    assert _field(reader, "tokenizer.ggml.pre") == "gpt-2"
    assert _field(reader, "tokenizer.ggml.bos_token_id") == tok.bos_token_id
    assert _field(reader, "tokenizer.ggml.eos_token_id") == tok.eos_token_id
    assert _field(reader, "tokenizer.chat_template") == tok.chat_template
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    assert _field(reader, "tokenizer.ggml.merges")[:3] == [" ".join(m) for m in merges[:3]]
    types = _field(reader, "tokenizer.ggml.token_type")
    assert types[tok.bos_token_id] == 3 and types[100] == 1


def test_pre_tokenizer_names() -> None:
    digits = {"type": "Digits", "individual_digits": True}
    byte_level = {"type": "ByteLevel", "use_regex": True}
    assert _pre_name(byte_level) == ("gpt-2", None)
    assert _pre_name({"type": "Sequence", "pretokenizers": [digits, byte_level]})[0] == "smollm"
    name, note = _pre_name({"type": "Sequence", "pretokenizers": [byte_level, digits]})
    assert name == "default" and note is not None


def test_non_byte_level_tokenizer_is_one_line_error() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(FrontierError, match="byte-level BPE"):
        vocab_of(PreTrainedTokenizerFast(tokenizer_object=raw), 2)


def test_sentencepiece_tokenizer_is_written_as_llamacpp_spm() -> None:
    import json as _json

    tok = tiny_sentencepiece_tokenizer()
    v = vocab_of(tok, 320)
    assert (v.model, v.pre, v.merges) == ("llama", "default", [])
    # the post-processor adds <s> (add_bos_token says nothing): read off the output
    assert v.add_bos and not v.add_eos and v.add_space_prefix is False
    assert v.types[0] == UNKNOWN and v.types[1] == v.types[2] == CONTROL
    assert v.types[3 : 3 + 256] == [BYTE] * 256 and v.tokens[3 + 0x41] == "<0x41>"
    assert v.scores is not None and len(v.scores) == len(v.tokens) == 320
    merges = _json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    vocab = tok.get_vocab()
    for rank, (a, b) in enumerate(merges[:10]):  # a piece scores minus its merge's rank
        assert v.scores[vocab[a + b]] == -rank
    assert v.scores[vocab["a"]] == 0.0 and v.types[vocab["a"]] == NORMAL
    assert v.scores[-1] < -len(merges)  # padding rows: below every merge


def test_record_and_apply_rebuild_the_same_file(tmp_path: Path) -> None:
    lm = tiny_loaded("qwen2")
    _export(lm, tmp_path / "a", gguf_type="q8_0")
    record = read_record(tmp_path / "a")
    assert record.export_format == "gguf" and record.gguf_type == "q8_0"
    assert record.verification["gguf_arch"] == "deci"
    assert json.loads((tmp_path / "a" / RECORD_NAME).read_text())["gguf_type"] == "q8_0"
    again = apply_compression(tmp_path / "a", tiny_loaded("qwen2"), tmp_path / "b")
    assert again.gguf is not None and again.gguf.gguf_type == "q8_0"
    assert (tmp_path / "a" / "model.gguf").read_bytes() == (
        tmp_path / "b" / "model.gguf"
    ).read_bytes()


def test_q4_k_m_without_llamacpp_is_one_line_error(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))
    with pytest.raises(FrontierError, match="frontier llamacpp build"):
        _export(tiny_loaded("llama"), tmp_path / "out", gguf_type="q4_k_m")
    assert not (tmp_path / "out").exists()


def test_without_llamacpp_the_export_says_how_to_get_it(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))
    _, result = _export(tiny_loaded("llama"), tmp_path / "out")
    assert not result.llamacpp.checked
    assert "frontier llamacpp build" in (result.llamacpp.skipped or "")


# -- in llama.cpp itself (when it is built; `frontier llamacpp build`) ------------------
needs_llamacpp = pytest.mark.skipif(
    _llamacpp.find() is None, reason="llama.cpp not built (frontier llamacpp build)"
)


def _fake_build(home: Path, stamp: dict[str, Any] | None) -> None:
    bin_dir = home / "llama.cpp" / _llamacpp.VERSION / "build" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / _llamacpp.LOGITS_TOOL).write_text("")
    if stamp is not None:
        (bin_dir.parent / "frontier-build.json").write_text(json.dumps(stamp))


@pytest.mark.parametrize(
    "stamp, found",
    [
        (None, False),
        ({"package": _llamacpp.PACKAGE, "version": _llamacpp.VERSION}, False),  # layout 1
        ({"layout": _llamacpp.BUILD_LAYOUT}, True),
    ],
)
def test_a_build_of_an_older_layout_is_not_used(
    stamp: dict[str, Any] | None, found: bool, tmp_path: Path, monkeypatch: Any
) -> None:
    """A build whose programs named the absolute path they were built at is made again."""
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))
    _fake_build(tmp_path, stamp)
    assert (_llamacpp.find() is not None) == found


def test_a_build_configured_through_another_path_is_recognised(tmp_path: Path) -> None:
    assert _llamacpp._configured_source(tmp_path) is None
    (tmp_path / "CMakeCache.txt").write_text(
        "CMAKE_BUILD_TYPE:STRING=Release\nCMAKE_HOME_DIRECTORY:INTERNAL=/tmp/gone/src\n"
    )
    assert _llamacpp._configured_source(tmp_path) == "/tmp/gone/src"


@needs_llamacpp
def test_the_build_runs_from_wherever_its_folder_is(tmp_path: Path) -> None:
    """Programs and libraries find each other through $ORIGIN: a copy of the folder runs
    (a missing library is the loader's exit 127, before the program's own usage line)."""
    import shutil
    import subprocess

    moved = tmp_path / "moved"
    shutil.copytree(_llamacpp.require().bin, moved, symlinks=True)
    done = subprocess.run([str(moved / _llamacpp.LOGITS_TOOL)], capture_output=True, text=True)
    assert done.returncode == 1 and "usage: frontier-logits" in done.stderr, done.stderr


@needs_llamacpp
@pytest.mark.parametrize("family", sorted(f for f, e in EXPECTED.items() if e))
def test_llamacpp_runs_every_written_family(
    family: str, tmp_path: Path, llamacpp_tiny: Any
) -> None:
    _, result = _export(llamacpp_tiny(family), tmp_path / "out")
    check = result.llamacpp
    assert check.checked
    atol = FAMILIES[family].f32_atol  # 1e-3; 3e-2 for gemma3 (llama.cpp's f16 GELU table)
    assert check.max_abs_logprob_diff <= atol
    assert atol == 1e-3 or family == "gemma3_text"
    assert abs(check.ppl_llamacpp / check.ppl_transformers - 1) < atol


@needs_llamacpp
@pytest.mark.parametrize("family", ["llama", "gemma3_text"])
def test_llamacpp_tokenizes_a_sentencepiece_vocabulary_as_transformers_does(
    family: str, tmp_path: Path, llamacpp_tiny: Any
) -> None:
    lm = llamacpp_tiny(family)
    lm.tokenizer = tiny_sentencepiece_tokenizer()
    _, result = _export(lm, tmp_path / "out")
    assert result.llamacpp.checked and result.llamacpp.tokenizer_mismatch is None
    assert result.llamacpp.tokenizer_tokens > 300  # byte fallback: many tokens
    assert result.llamacpp.max_abs_logprob_diff <= FAMILIES[family].f32_atol
    record = read_record(tmp_path / "out")
    assert record.verification["llamacpp_tokenizer"].startswith("same ids")


@needs_llamacpp
def test_a_file_that_tokenizes_differently_is_not_written(tmp_path: Path, monkeypatch: Any) -> None:
    real = _llamacpp.tokenize

    def off_by_one(gguf: Path, text: str) -> list[int]:
        ids = real(gguf, text)
        return [*ids[:5], (ids[5] + 1) % 320, *ids[6:]]

    monkeypatch.setattr(_llamacpp, "tokenize", off_by_one)
    with pytest.raises(FrontierError, match=r"tokenizes differently.*token 5"):
        _export(tiny_loaded("llama"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@needs_llamacpp
def test_llamacpp_check_catches_a_wrong_file(tmp_path: Path) -> None:
    """The comparison binds: the same file with one MLP weight changed fails it."""
    from frontier.export._gguf import check_in_llamacpp, fixed_ids

    lm = tiny_loaded("llama")
    selection, result = _export(lm, tmp_path / "out")
    path = result.gguf.path
    data = bytearray(path.read_bytes())
    t = _tensor(_reader(path), "blk.1.ffn_down.weight")
    start = int(t.data_offset)
    data[start : start + 4] = np.float32(5.0).tobytes()
    path.write_bytes(bytes(data))
    pruner = Pruner(lm.model, [torch.zeros(w) for w in lm.adapter.full_widths(lm.model)])
    with pruner.pruned(selection):
        ids = fixed_ids(lm.tokenizer, lm.model.config.vocab_size)
        assert check_in_llamacpp(lm.model, path, ids).max_abs_logprob_diff > 1e-3


def test_cli_llamacpp_status_and_gguf_choices(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    from frontier.cli import build_parser, main

    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))
    assert main(["llamacpp", "status"]) == 0
    assert "frontier llamacpp build" in capsys.readouterr().out
    args = build_parser().parse_args(
        ["export", "s", "1", "--out", "o", "--format", "gguf", "--gguf-type", "q8_0"]
    )
    assert (args.format, args.gguf_type) == ("gguf", "q8_0")


def test_llamacpp_build_is_found_only_when_complete(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))
    bin_dir = _llamacpp.root() / "build" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / _llamacpp.LOGITS_TOOL).write_text("")
    assert _llamacpp.find() is None  # no stamp: an interrupted build
    stamp = {"layout": _llamacpp.BUILD_LAYOUT}
    (bin_dir.parent / "frontier-build.json").write_text(json.dumps(stamp))
    found = _llamacpp.find()
    assert found is not None and found.bin == bin_dir
    with pytest.raises(FrontierError, match="llama-bench is not built"):
        found.tool("llama-bench")


@needs_llamacpp
def test_q4_k_m_is_made_by_llama_quantize_at_block_widths(tmp_path: Path) -> None:
    if not (_llamacpp.root() / "build" / "bin" / "llama-quantize").is_file():
        pytest.skip("llama-quantize not built")
    _, result = _export(tiny_loaded("llama"), tmp_path / "out", gguf_type="q4_k_m")
    assert result.gguf.widths == (32, 64, 64)
    reader = _reader(result.gguf.path)
    assert list(_field(reader, "deci.feed_forward_length")) == [32, 64, 64]
    assert result.llamacpp.checked and result.llamacpp.ppl_llamacpp > 0
    assert not list((tmp_path / "out").glob("*-f32.gguf"))  # the f32 step is removed
