"""A transformers tokenizer as GGUF metadata: tokens, types, merges, special ids, template.

Two kinds are written, each as the llama.cpp tokenizer model that implements it:

- sentencepiece-style tokenizers (Gemma, Llama 2, Mistral: pieces with ``▁`` for a space,
  byte fallback), as llama.cpp's ``llama`` model (SPM): every piece with a score and a
  type. A Unigram model's scores are its own; a BPE model's are minus the rank of the
  merge that first makes the piece (llama.cpp's SPM merges the best-scored pair first,
  which is then the order the merges were learnt in), and 0 for single characters;
- byte-level BPE tokenizers (GPT-2 style: SmolLM2, Llama 3, Qwen), as llama.cpp's
  ``gpt2`` model.

Either way the export then tokenizes a test text in llama.cpp and in transformers and
writes nothing unless the ids agree (:func:`frontier.export._gguf.tokenizer_mismatch`).

For byte-level BPE, llama.cpp picks its pre-tokenizer (how text is
split before BPE) by the name in ``tokenizer.ggml.pre``; the name is chosen here from the
tokenizer's own ``pre_tokenizer`` description, from a small table of the splits llama.cpp
implements (``src/llama-vocab.cpp``). A split not in the table is written as ``default``
and reported, since llama.cpp may then tokenize some text differently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from frontier.errors import FrontierError

# llama.cpp token types (llama_token_type): normal, unknown, control (special),
# user-defined, byte (sentencepiece's <0xAB> fallback pieces)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE = 1, 2, 3, 4, 6
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")

_LLAMA3_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?"
    "[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
_QWEN2_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?"
    "[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)


@dataclass(frozen=True)
class Vocab:
    """What is written under ``tokenizer.*``."""

    model: str
    pre: str
    tokens: list[str]
    types: list[int]
    merges: list[str]
    special: dict[str, int]
    add_bos: bool
    add_eos: bool
    chat_template: str | None
    note: str | None = None  # set when llama.cpp may tokenize differently
    scores: list[float] | None = None  # sentencepiece-style only
    add_space_prefix: bool | None = None  # sentencepiece-style only

    def write(self, w: Any) -> None:
        w.add_tokenizer_model(self.model)
        w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        w.add_token_types(self.types)
        if self.scores is not None:
            w.add_token_scores(self.scores)
        if self.add_space_prefix is not None:
            w.add_add_space_prefix(self.add_space_prefix)
        if self.merges:
            w.add_token_merges(self.merges)
        for key, value in self.special.items():
            getattr(w, f"add_{key}_token_id")(value)
        w.add_add_bos_token(self.add_bos)
        w.add_add_eos_token(self.add_eos)
        if self.chat_template:
            w.add_chat_template(self.chat_template)


def vocab_of(tokenizer: Any, vocab_size: int) -> Vocab:
    """The GGUF vocabulary of a transformers fast tokenizer, padded to ``vocab_size``."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise FrontierError("GGUF export needs a fast (tokenizers) tokenizer")
    spec = json.loads(backend.to_str())
    model = spec.get("model") or {}
    sentencepiece = _sentencepiece(spec)
    if not sentencepiece and (
        model.get("type") != "BPE" or not _byte_level(spec.get("pre_tokenizer"))
    ):
        raise FrontierError(
            "GGUF export writes byte-level BPE (GPT-2 style) and sentencepiece-style "
            f"tokenizers; this one is {model.get('type')} with pre-tokenizer "
            f"{_kind(spec.get('pre_tokenizer'))}"
        )
    by_id = {int(i): str(t) for t, i in tokenizer.get_vocab().items()}
    if max(by_id) >= vocab_size:
        raise FrontierError(f"tokenizer has ids up to {max(by_id)}, the model {vocab_size}")
    added = {int(a["id"]): bool(a.get("special")) for a in spec.get("added_tokens") or []}
    unk = getattr(tokenizer, "unk_token_id", None)
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:  # embedding rows beyond the tokenizer (padding)
            tokens.append(f"[PAD{i}]")
            types.append(USER_DEFINED)
            continue
        tokens.append(by_id[i])
        if sentencepiece and i == unk:
            types.append(UNKNOWN)
        elif i in added:
            types.append(CONTROL if added[i] else USER_DEFINED)
        elif sentencepiece and _BYTE_PIECE.fullmatch(by_id[i]):
            types.append(BYTE)
        else:
            types.append(NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    special = {}
    for key in ("bos", "eos", "unk", "pad"):
        value = getattr(tokenizer, f"{key}_token_id", None)
        if value is not None:
            special[key] = int(value)
    template = getattr(tokenizer, "chat_template", None)
    # what the tokenizer adds around a text, read off its output rather than its flags (a
    # post-processor may add BOS while add_bos_token says nothing)
    probe = [int(i) for i in tokenizer("a")["input_ids"]]
    common: dict[str, Any] = {
        "tokens": tokens,
        "types": types,
        "special": special,
        "add_bos": bool(probe) and probe[0] == special.get("bos"),
        "add_eos": len(probe) > 1 and probe[-1] == special.get("eos"),
        "chat_template": template if isinstance(template, str) else None,
    }
    if sentencepiece:
        return Vocab(
            model="llama",
            pre="default",
            merges=[],
            scores=_piece_scores(model, tokens),
            add_space_prefix=_prepends_space(spec),
            **common,
        )
    pre, note = _pre_name(spec.get("pre_tokenizer"))
    return Vocab(model="gpt2", pre=pre, merges=merges, note=note, **common)


def _sentencepiece(spec: dict[str, Any]) -> bool:
    """A tokenizer converted from sentencepiece: a Unigram model, or BPE with byte
    fallback over text whose spaces become ``▁``."""
    model = spec.get("model") or {}
    if model.get("type") == "Unigram":
        return True
    if model.get("type") != "BPE" or not model.get("byte_fallback"):
        return False
    text = json.dumps([spec.get("normalizer"), spec.get("pre_tokenizer")], ensure_ascii=False)
    return "\u2581" in text or "Metaspace" in text


def _piece_scores(model: dict[str, Any], tokens: list[str]) -> list[float]:
    """Every piece's score: a Unigram model's own; for BPE minus the rank of the first
    merge that makes the piece, 0 for a single character, and below every merge for a
    longer piece no merge makes (added tokens, padding)."""
    if model.get("type") == "Unigram":
        vocab = model.get("vocab") or []
        own = {str(p): float(sc) for p, sc in vocab}
        return [own.get(t, -1e9) for t in tokens]
    ranks: dict[str, int] = {}
    for rank, merge in enumerate(model.get("merges") or []):
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        ranks.setdefault(a + b, rank)
    floor = -float(len(ranks) + 1)
    return [-float(ranks[t]) if t in ranks else 0.0 if len(t) == 1 else floor for t in tokens]


def _prepends_space(spec: dict[str, Any]) -> bool:
    """Whether the tokenizer puts a ``▁`` before the text (sentencepiece's dummy prefix)."""
    norm, pre = spec.get("normalizer"), spec.get("pre_tokenizer")
    found = False

    def walk(node: Any) -> None:
        nonlocal found
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "Prepend" or (
                kind == "Metaspace" and node.get("prepend_scheme", "always") != "never"
            ):
                found = True
            for child in (node.get("normalizers"), node.get("pretokenizers")):
                for item in child or []:
                    walk(item)

    walk(norm)
    walk(pre)
    return found


def _byte_level(pre: Any) -> bool:
    if not isinstance(pre, dict):
        return False
    if pre.get("type") == "ByteLevel":
        return True
    return any(_byte_level(p) for p in pre.get("pretokenizers") or [])


def _kind(pre: Any) -> str:
    return str(pre.get("type")) if isinstance(pre, dict) else "none"


def _pre_name(pre: Any) -> tuple[str, str | None]:
    """llama.cpp's name for a byte-level pre-tokenizer, and a note when it is a guess."""
    parts = pre.get("pretokenizers") if pre.get("type") == "Sequence" else [pre]
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2", None
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits"):
        return "smollm", None
    if kinds == ["Split", "ByteLevel"]:
        regex = (parts[0].get("pattern") or {}).get("Regex")
        if regex == _LLAMA3_REGEX:
            return "llama-bpe", None
        if regex == _QWEN2_REGEX:
            return "qwen2", None
    return "default", (
        f"llama.cpp has no pre-tokenizer declared here for {kinds}: written as 'default', "
        "so llama.cpp may split some text differently from transformers"
    )
