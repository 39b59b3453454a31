"""Offline tokenizers for tests: trained on a pangram, no download.

Re-exported by :mod:`frontier.testing`; the tiny models there share their vocabulary.
"""

from __future__ import annotations

import functools
from typing import Any

#: The tokenizers' vocabulary size (at most), and the tiny models' vocabulary.
VOCAB = 320


@functools.lru_cache(maxsize=1)
def tiny_tokenizer() -> Any:
    """A byte-level BPE tokenizer with a 320-token vocabulary, trained offline on a pangram."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    text = ["the quick brown fox jumps over the lazy dog. " * 4]
    tok.train_from_iterator(text, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


@functools.lru_cache(maxsize=1)
def tiny_sentencepiece_tokenizer() -> Any:
    """A sentencepiece-style tokenizer (Gemma, Llama 2): ``▁`` for spaces, BPE merges
    learnt offline on a pangram, the 256 ``<0xAB>`` byte-fallback pieces, ``<s>`` added
    in front of every text by a post-processor; at most :data:`VOCAB` ids."""
    import json

    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    space = normalizers.Replace(" ", "\u2581")
    learner = Tokenizer(models.BPE())
    learner.normalizer = space
    text = ["the quick brown fox jumps over the lazy dog. " * 4]
    learner.train_from_iterator(
        text, trainer=trainers.BpeTrainer(vocab_size=58, show_progress=False)
    )
    learnt = json.loads(learner.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)}}
    for piece in sorted(learnt["vocab"], key=learnt["vocab"].get):
        vocab.setdefault(piece, len(vocab))
    pairs = [m.split(" ") if isinstance(m, str) else m for m in learnt["merges"]]
    merges = [(str(a), str(b)) for a, b in pairs]
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = space
    tok.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    assert len(vocab) <= VOCAB
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
