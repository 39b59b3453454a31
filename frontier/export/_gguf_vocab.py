"""A transformers tokenizer as GGUF metadata: tokens, types, merges, special ids, template.

Byte-level BPE tokenizers (GPT-2 style: SmolLM2, Llama 3, Qwen) are written as
llama.cpp's ``gpt2`` tokenizer model. llama.cpp picks its pre-tokenizer (how text is
split before BPE) by the name in ``tokenizer.ggml.pre``; the name is chosen here from the
tokenizer's own ``pre_tokenizer`` description, from a small table of the splits llama.cpp
implements (``src/llama-vocab.cpp``). A split not in the table is written as ``default``
and reported, since llama.cpp may then tokenize some text differently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from frontier.errors import FrontierError

# llama.cpp token types (llama_token_type): normal, control (special), user-defined
NORMAL, CONTROL, USER_DEFINED = 1, 3, 4

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
    chat_template: str | None
    note: str | None = None  # set when llama.cpp may tokenize differently

    def write(self, w: Any) -> None:
        w.add_tokenizer_model(self.model)
        w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        w.add_token_types(self.types)
        if self.merges:
            w.add_token_merges(self.merges)
        for key, value in self.special.items():
            getattr(w, f"add_{key}_token_id")(value)
        w.add_add_bos_token(self.add_bos)
        w.add_add_eos_token(False)
        if self.chat_template:
            w.add_chat_template(self.chat_template)


def vocab_of(tokenizer: Any, vocab_size: int) -> Vocab:
    """The GGUF vocabulary of a transformers fast tokenizer, padded to ``vocab_size``."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise FrontierError("GGUF export needs a fast (tokenizers) tokenizer")
    spec = json.loads(backend.to_str())
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or not _byte_level(spec.get("pre_tokenizer")):
        raise FrontierError(
            "GGUF export writes byte-level BPE tokenizers only (GPT-2 style); this one is "
            f"{model.get('type')} with pre-tokenizer {_kind(spec.get('pre_tokenizer'))}"
        )
    by_id = {int(i): str(t) for t, i in tokenizer.get_vocab().items()}
    if max(by_id) >= vocab_size:
        raise FrontierError(f"tokenizer has ids up to {max(by_id)}, the model {vocab_size}")
    added = {int(a["id"]): bool(a.get("special")) for a in spec.get("added_tokens") or []}
    tokens, types = [], []
    for i in range(vocab_size):
        if i in by_id:
            tokens.append(by_id[i])
            types.append(NORMAL if i not in added else CONTROL if added[i] else USER_DEFINED)
        else:  # embedding rows beyond the tokenizer (padding)
            tokens.append(f"[PAD{i}]")
            types.append(USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    pre, note = _pre_name(spec.get("pre_tokenizer"))
    special = {}
    for key in ("bos", "eos", "unk", "pad"):
        value = getattr(tokenizer, f"{key}_token_id", None)
        if value is not None:
            special[key] = int(value)
    template = getattr(tokenizer, "chat_template", None)
    return Vocab(
        model="gpt2",
        pre=pre,
        tokens=tokens,
        types=types,
        merges=merges,
        special=special,
        add_bos=bool(getattr(tokenizer, "add_bos_token", False)),
        chat_template=template if isinstance(template, str) else None,
        note=note,
    )


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
