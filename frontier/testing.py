"""Tiny random models of every supported family, and an offline tokenizer, for tests.

These are *random* weights: good for shapes, exactness and logic, never for quality
figures. Real-model checks use the pretrained aliases (``frontier.models``).
"""

from __future__ import annotations

import functools
from typing import Any

import torch

VOCAB = 320
HIDDEN = 32
WIDTH = 64
LAYERS = 3

_COMMON = {"vocab_size": VOCAB, "hidden_size": HIDDEN, "num_hidden_layers": LAYERS}
_ATTN = {"num_attention_heads": 4, "num_key_value_heads": 2}

# model_type -> (config class name, kwargs); one per supported family.
TINY_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", {**_COMMON, **_ATTN, "intermediate_size": WIDTH}),
    "mistral": ("MistralConfig", {**_COMMON, **_ATTN, "intermediate_size": WIDTH}),
    "qwen2": ("Qwen2Config", {**_COMMON, **_ATTN, "intermediate_size": WIDTH}),
    "qwen3": ("Qwen3Config", {**_COMMON, **_ATTN, "intermediate_size": WIDTH, "head_dim": 8}),
    "gemma": ("GemmaConfig", {**_COMMON, **_ATTN, "intermediate_size": WIDTH, "head_dim": 8}),
    "gemma2": ("Gemma2Config", {**_COMMON, **_ATTN, "intermediate_size": WIDTH, "head_dim": 8}),
    "gemma3_text": (
        "Gemma3TextConfig",
        {**_COMMON, **_ATTN, "intermediate_size": WIDTH, "head_dim": 8},
    ),
    "phi3": ("Phi3Config", {**_COMMON, **_ATTN, "intermediate_size": WIDTH, "pad_token_id": 0}),
    "gpt2": (
        "GPT2Config",
        {"vocab_size": VOCAB, "n_embd": HIDDEN, "n_layer": LAYERS, "n_head": 4, "n_inner": WIDTH},
    ),
    "opt": (
        "OPTConfig",
        {**_COMMON, "num_attention_heads": 4, "ffn_dim": WIDTH, "word_embed_proj_dim": HIDDEN},
    ),
    "gpt_neox": (
        "GPTNeoXConfig",
        {**_COMMON, "num_attention_heads": 4, "intermediate_size": WIDTH},
    ),
    "falcon": (
        "FalconConfig",
        {**_COMMON, "num_attention_heads": 4, "ffn_hidden_size": WIDTH, "bias": True},
    ),
}

# Study settings small enough for a tiny model: a trial takes well under a second.
SMALL_STUDY: dict[str, int] = {
    "calibration_tokens": 512,
    "calibration_seq_len": 64,
    "search_tokens": 256,
    "report_tokens": 512,
    "seq_len": 64,
    "multiple": 4,
}


def small_spec(model: Any, storage: str, **overrides: Any) -> Any:
    """A :class:`~frontier.search.spec.StudySpec` of :data:`SMALL_STUDY` size on ``model``
    (``ppl<1.5``, 12 trials, study ``s`` in ``storage``); ``overrides`` win."""
    from frontier.search.spec import StudySpec

    base: dict[str, Any] = {
        "model": str(model),
        "slos": ("ppl<1.5",),
        "trials": 12,
        "study": "s",
        "storage": storage,
        **SMALL_STUDY,
    }
    return StudySpec.from_dict({**base, **overrides})


# Some of the same settings as `frontier find` flags (what the reliability tests' studies use).
SMALL_STUDY_FLAGS: list[str] = [
    arg
    for key in ("search_tokens", "report_tokens", "seq_len", "calibration_tokens")
    for arg in ("--" + key.replace("_", "-"), str(SMALL_STUDY[key]))
]

_SPECIAL_IDS = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}


def tiny_config(model_type: str) -> Any:
    import transformers

    cls_name, kwargs = TINY_CONFIGS[model_type]
    cls = getattr(transformers, cls_name)
    return cls(**{**_SPECIAL_IDS, **kwargs})


def tiny_model(model_type: str, *, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised causal LM of the family, in fp32 eval mode.

    Weights are re-drawn with a larger scale than the default init (0.02) so that
    activations are not vanishingly small and pruning differences are visible.
    """
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(model_type), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
            elif "bias" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model.eval()


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


def tiny_loaded(model_type: str = "llama", *, seed: int = 0) -> Any:
    """A :class:`frontier.models.LoadedModel` around a tiny random model."""
    from frontier.models import LoadedModel

    return LoadedModel(
        model=tiny_model(model_type, seed=seed),
        tokenizer=tiny_tokenizer(),
        source=f"tiny-random-{model_type}",
        name=f"tiny-random-{model_type}",
    )
