"""Write a pruned model as one GGUF file for llama.cpp, read it back, and run it there.

The model passed in is already pruned (the export applies the selection around this).
Llama-style families go out at their exact per-layer MLP widths through llama.cpp's
``deci`` architecture; other families at one width, zero-padded to the widest kept
layer when the plan is not uniform (see :mod:`frontier.export._gguf_arch`). Types:
``f32``, ``f16`` and ``q8_0`` are written here with the ``gguf`` package; ``q4_k_m``
is made from an f32 file by llama.cpp's own ``llama-quantize``. Widths are padded with
zero neurons (same outputs) to whole quantization blocks, and at f16 to whole SIMD steps
of llama.cpp's dot product where the scalar tail would be longer than the padding
(:func:`built_widths`); f32 files keep the plan's widths exactly, but for a removed MLP
(width 0), built as one zero neuron since llama.cpp's ``n_ff = 0`` drops the layer's
attention too (:mod:`frontier.export._gguf_widths`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from frontier._io import atomic_dir, write_json_atomic
from frontier.errors import FrontierError
from frontier.export import llamacpp as _llamacpp
from frontier.export._gguf_arch import GGUFLayout, family_for, gguf_tensors, size_label
from frontier.export._gguf_vocab import vocab_of
from frontier.export._gguf_widths import F16_STEP, QUANT_BLOCK, built_widths, removed_note
from frontier.export._record import RECORD_NAME, CompressionRecord
from frontier.export._refit_file import write_refit
from frontier.pruning.refit import DownWeights

GGUFType = Literal["f32", "f16", "q8_0", "q4_k_m"]
GGUF_TYPES: tuple[str, ...] = get_args(GGUFType)
GGUF_NAME = "model.gguf"
FIXED_TEXT = (
    "The history of the city begins with a small settlement on the river, where traders "
    "stopped to rest before crossing the mountains. Over the centuries it grew into a "
    "market town, then an industrial centre, and today it is known for its university, "
    "its museums and the old stone bridge that still carries traffic across the water."
)
#: What the tokenizer check feeds both tokenizers: digits, punctuation, runs of spaces,
#: tabs, newlines and non-ASCII letters, where tokenizers' pre-splitting rules differ.
TOKENIZER_TEXT = (
    FIXED_TEXT
    + "\n\nIn 1998, 42% of the café's 1,024 visitors said “naïve” things — twice!\n"
    + "  Indented line\twith a tab; Zürich, Kraków, 東京 and ελληνικά...  done.\n"
)


@dataclass(frozen=True)
class GGUFWritten:
    """What was written: where, how it is laid out, and what it weighs."""

    path: Path
    arch: str
    layout: GGUFLayout
    gguf_type: GGUFType
    widths: tuple[int, ...]  # MLP widths as built by llama.cpp (padded ones included)
    pruned: tuple[int, ...]  # the plan's widths
    tensor_bytes: int
    kept_f16: tuple[str, ...] = ()  # q8_0 tensors whose rows are not whole 32-value blocks
    notes: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """One line on the layout, for the command's output."""
        # zero neurons beyond the plan's widths, but those written for removed MLPs (a note)
        extra = sum(b - p for b, p in zip(self.widths, self.pruned, strict=True) if p)
        if self.layout != "padded" and extra:
            unit = (
                f"whole blocks of {QUANT_BLOCK}"
                if self.gguf_type in ("q8_0", "q4_k_m")
                else f"whole SIMD steps of {F16_STEP} where shorter than the scalar tail"
                if self.gguf_type == "f16"
                else "the asked multiple"
            )
            blocks = f", rounded up to {unit} with {extra} zero neurons in all (same outputs)"
        else:
            blocks = ""
        if self.layout == "exact":
            return f"{self.arch}: every layer at its own MLP width (exact){blocks}"
        if self.layout == "uniform":
            return f"{self.arch}: one MLP width ({self.widths[0]}) in every layer{blocks}"
        return (
            f"{self.arch}: llama.cpp builds every layer of this family at one MLP width, so "
            f"layers are zero-padded to {max(self.widths)} (same outputs, no size or speed gain)"
        )


@dataclass(frozen=True)
class LlamaCppCheck:
    """llama.cpp's outputs on :data:`FIXED_TEXT` against transformers'."""

    tokens: int
    max_abs_logprob_diff: float  # over every position and vocabulary entry
    ppl_llamacpp: float
    ppl_transformers: float
    checked: bool  # False when llama.cpp is not built: then only ``skipped`` is set
    skipped: str | None = None
    # None: llama.cpp makes the same ids of TOKENIZER_TEXT as transformers (or there was
    # no tokenizer to compare); else where the two part
    tokenizer_mismatch: str | None = None
    tokenizer_tokens: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        if not self.checked:
            return {"llamacpp": "not run: " + (self.skipped or "")}
        return {
            "llamacpp_tokens": self.tokens,
            "llamacpp_max_abs_logprob_diff": self.max_abs_logprob_diff,
            "llamacpp_ppl": self.ppl_llamacpp,
            "transformers_ppl": self.ppl_transformers,
            "llamacpp_tokenizer": self.tokenizer_mismatch
            or f"same ids as transformers on the check text ({self.tokenizer_tokens} tokens)",
        }


# -- writing ----------------------------------------------------------------------------
def write_gguf(
    model: Any,
    tokenizer: Any,
    widths: tuple[int, ...],
    path: Path,
    gguf_type: GGUFType,
    *,
    name: str,
    pad_as: GGUFType | None = None,
    multiple: int | None = None,
) -> GGUFWritten:
    """Write the (pruned, in-memory) transformers ``model`` to ``path``.

    ``pad_as``: pad the MLP widths as for that type (the f32 file that llama-quantize
    turns into q4_k_m is padded as q4_k_m). ``multiple``: pad them to multiples of this
    instead of the type's rule in :func:`built_widths` (1: no padding where the type
    allows it).
    """
    import gguf

    if gguf_type not in GGUF_TYPES:
        raise FrontierError(f"unknown GGUF type {gguf_type!r}; one of {', '.join(GGUF_TYPES)}")
    cfg = model.config
    family = family_for(str(cfg.model_type))
    width_list = [int(w) for w in widths]
    layout = family.layout(width_list)
    arch = family.arch_for(width_list)
    built = built_widths(width_list, layout, pad_as or gguf_type, multiple)
    if gguf_type == "q4_k_m":
        _llamacpp.require()  # fail before writing anything
        f32 = path.with_name(path.stem + "-f32.gguf")
        first = write_gguf(
            model, tokenizer, widths, f32, "f32", name=name, pad_as="q4_k_m", multiple=multiple
        )
        try:
            _llamacpp.quantize(f32, path, "Q4_K_M")
        finally:
            f32.unlink(missing_ok=True)
        size = _tensor_bytes(path)
        return GGUFWritten(
            path, arch, layout, gguf_type, tuple(built), tuple(widths), size, (), first.notes
        )
    state = _numpy_state(model)
    tied = bool(getattr(cfg, "tie_word_embeddings", False)) and _shares_embedding(model)
    tensors = gguf_tensors(family, cfg, state, tied=tied, pad_to=built)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_size_label(size_label(sum(int(t.size) for _, t in tensors)))
    writer.add_file_type(int(_FILE_TYPES[gguf_type]))
    family.hparams(writer, cfg, built)
    notes = [n for n in (removed_note(width_list, built),) if n is not None]
    if tokenizer is not None:
        vocab = vocab_of(tokenizer, int(cfg.vocab_size))
        vocab.write(writer)
        if vocab.note:
            notes.append(vocab.note)
    else:
        writer.add_tokenizer_model("none")
        notes.append("no tokenizer: the file has no vocabulary (token ids only)")
    kept_f16 = []
    for gname, t in tensors:
        data, qtype = _typed(t, gguf_type)
        if gguf_type == "q8_0" and t.ndim >= 2 and qtype != gguf.GGMLQuantizationType.Q8_0:
            kept_f16.append(gname)
        writer.add_tensor(gname, data, raw_dtype=qtype)
    if gguf_type == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return GGUFWritten(
        path,
        arch,
        layout,
        gguf_type,
        tuple(built),
        tuple(widths),
        _tensor_bytes(path),
        tuple(kept_f16),
        tuple(notes),
    )


_FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7, "q4_k_m": 15}  # llama_ftype


def _typed(t: np.ndarray, gguf_type: GGUFType) -> tuple[np.ndarray, Any]:
    """A tensor in the file's type: vectors stay f32 (llama.cpp's norms and biases are)."""
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import quantize

    if gguf_type == "f32" or t.ndim < 2:
        return t.astype(np.float32), Q.F32
    if gguf_type == "q8_0" and t.shape[-1] % 32 == 0:
        return quantize(t.astype(np.float32), Q.Q8_0), Q.Q8_0
    return t.astype(np.float16), Q.F16


def _numpy_state(model: Any) -> dict[str, np.ndarray]:
    return {
        k: v.detach().float().cpu().numpy()
        for k, v in model.state_dict().items()
        if v.is_floating_point()
    }


def _shares_embedding(model: Any) -> bool:
    head = model.get_output_embeddings()
    emb = model.get_input_embeddings()
    return head is None or head.weight.data_ptr() == emb.weight.data_ptr()


def _tensor_bytes(path: Path) -> int:
    from gguf import GGUFReader

    return sum(int(t.n_bytes) for t in GGUFReader(str(path)).tensors)


# -- checking ---------------------------------------------------------------------------
def read_back(written: GGUFWritten, expect: dict[str, tuple[int, ...]]) -> None:
    """Re-open the file with ``gguf.GGUFReader``: every expected tensor, at its shape."""
    from gguf import GGUFReader

    got = {
        t.name: tuple(int(x) for x in reversed(t.shape))
        for t in GGUFReader(str(written.path)).tensors
    }
    if got.keys() != expect.keys():
        missing = sorted(expect.keys() - got.keys()) + sorted(got.keys() - expect.keys())
        raise FrontierError(f"GGUF check failed: tensors differ ({', '.join(missing[:3])})")
    for name, shape in expect.items():
        if got[name] != shape:
            raise FrontierError(f"GGUF check failed: {name} is {got[name]}, expected {shape}")


def expected_shapes(model: Any, built: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """GGUF name -> numpy-order shape of every tensor the file must hold."""
    cfg = model.config
    family = family_for(str(cfg.model_type))
    state = {
        k: np.zeros(v.shape, dtype=np.float32)
        for k, v in model.state_dict().items()
        if v.is_floating_point()
    }
    tied = bool(getattr(cfg, "tie_word_embeddings", False)) and _shares_embedding(model)
    return {
        n: tuple(t.shape)
        for n, t in gguf_tensors(family, cfg, state, tied=tied, pad_to=list(built))
    }


def fixed_ids(tokenizer: Any, vocab: int, n: int = 64) -> list[int]:
    """Token ids of :data:`FIXED_TEXT` (or a fixed random draw without a tokenizer)."""
    if tokenizer is not None:
        ids = [int(i) for i in tokenizer(FIXED_TEXT)["input_ids"]][:n]
        if len(ids) >= 8:
            return ids
    return [int(i) for i in np.random.default_rng(0).integers(0, vocab, n)]


def tokenizer_mismatch(tokenizer: Any, path: Path) -> tuple[str | None, int]:
    """Where llama.cpp's tokenization of :data:`TOKENIZER_TEXT` with the file's tokenizer
    parts from transformers' (None where it does not), and the number of tokens."""
    ours = [int(i) for i in tokenizer(TOKENIZER_TEXT)["input_ids"]]
    theirs = _llamacpp.tokenize(path, TOKENIZER_TEXT)
    if ours == theirs:
        return None, len(ours)
    k = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), None)
    k = min(len(ours), len(theirs)) if k is None else k
    return (
        f"llama.cpp tokenizes differently from transformers ({len(theirs)} vs {len(ours)} "
        f"tokens; first difference at token {k}: {theirs[k : k + 3]} vs {ours[k : k + 3]})",
        len(ours),
    )


def check_in_llamacpp(
    model: Any, path: Path, ids: list[int], *, threads: int = 1, tokenizer: Any = None
) -> LlamaCppCheck:
    """llama.cpp's next-token log-probabilities and perplexity against transformers', and
    its tokenization of :data:`TOKENIZER_TEXT` against ``tokenizer``'s where one is given."""
    import torch

    if _llamacpp.find() is None:
        return LlamaCppCheck(len(ids), math.nan, math.nan, math.nan, False, _llamacpp.INSTALL_HINT)
    theirs = torch.from_numpy(_llamacpp.logits(path, ids, threads=threads)).double()
    with torch.no_grad():
        ours = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].double()
    if theirs.shape != ours.shape:
        raise FrontierError(
            f"llama.cpp gave logits of shape {tuple(theirs.shape)}, expected {tuple(ours.shape)}"
        )
    lp_theirs, lp_ours = theirs.log_softmax(-1), ours.log_softmax(-1)
    diff = float((lp_theirs - lp_ours).abs().max())
    nxt = torch.tensor(ids[1:])
    ppl = [float(torch.exp(-lp[:-1].gather(1, nxt[:, None]).mean())) for lp in (lp_theirs, lp_ours)]
    mismatch, n = tokenizer_mismatch(tokenizer, path) if tokenizer is not None else (None, 0)
    return LlamaCppCheck(len(ids), diff, ppl[0], ppl[1], True, None, mismatch, n)


# -- the export -------------------------------------------------------------------------
def export_gguf(
    out: Path,
    model: Any,
    tokenizer: Any,
    widths: tuple[int, ...],
    gguf_type: GGUFType,
    record: CompressionRecord,
    *,
    name: str,
    threads: int = 1,
    refit: Sequence[DownWeights | None] | None = None,
) -> tuple[CompressionRecord, GGUFWritten, LlamaCppCheck]:
    """Write ``out/model.gguf`` and ``compression.json`` for the pruned ``model``.

    The file is read back (every tensor at its shape) and, where llama.cpp is built,
    run there on :data:`FIXED_TEXT`: at f32 its log-probabilities must match
    transformers' within the family's ``f32_atol`` (1e-3), and at every type its
    tokenizer must make the same ids of :data:`TOKENIZER_TEXT` as transformers', or
    nothing is written.
    """
    atol = family_for(str(model.config.model_type)).f32_atol
    with atomic_dir(out) as tmp:
        written = write_gguf(model, tokenizer, widths, tmp / GGUF_NAME, gguf_type, name=name)
        read_back(written, expected_shapes(model, written.widths))
        ids = fixed_ids(tokenizer, int(model.config.vocab_size))
        check = check_in_llamacpp(model, written.path, ids, threads=threads, tokenizer=tokenizer)
        if check.tokenizer_mismatch is not None:
            raise FrontierError(f"GGUF check failed: {check.tokenizer_mismatch}; nothing written")
        if check.checked and gguf_type == "f32" and check.max_abs_logprob_diff > atol:
            raise FrontierError(
                f"GGUF check failed: llama.cpp's log-probabilities differ from transformers' "
                f"by up to {check.max_abs_logprob_diff:.3g} (allowed {atol:g}); "
                "nothing written"
            )
        verification = {
            "gguf_arch": written.arch,
            "gguf_layout": written.layout,
            "gguf_widths": list(written.widths),
            "gguf_tensor_bytes": written.tensor_bytes,
            **check.to_dict(),
        }
        if written.kept_f16:
            verification["gguf_kept_f16"] = list(written.kept_f16)
        record = replace(record, gguf_type=gguf_type, verification=verification)
        if refit is not None and any(r is not None for r in refit):
            record = replace(record, refit=write_refit(tmp, refit))  # for apply
        write_json_atomic(tmp / RECORD_NAME, record.to_dict())
    return record, replace(written, path=out / GGUF_NAME), check
