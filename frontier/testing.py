"""Test helpers: tiny random models of every family, an offline tokenizer, a made-up study.

These are *random* weights: good for shapes, exactness and logic, never for quality
figures. Real-model checks use the pretrained aliases (``frontier.models``).

The tiny models are here; the real shapes (:mod:`frontier.testing_shapes`), the
tokenizers (:mod:`frontier.testing_tokenizers`) and the studies
(:mod:`frontier.testing_studies`) have modules of their own, and every helper is
imported from here.
"""

from __future__ import annotations

from typing import Any

import torch

from frontier.testing_shapes import REAL_SHAPES, real_shape_config
from frontier.testing_studies import (
    SMALL_STUDY,
    SMALL_STUDY_FLAGS,
    HandTrial,
    TinyStudy,
    small_spec,
    store_study,
    synthetic_summary,
)
from frontier.testing_tokenizers import VOCAB, tiny_sentencepiece_tokenizer, tiny_tokenizer

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


def tiny_loaded(model_type: str = "llama", *, seed: int = 0) -> Any:
    """A :class:`frontier.models.LoadedModel` around a tiny random model."""
    from frontier.models import LoadedModel

    return LoadedModel(
        model=tiny_model(model_type, seed=seed),
        tokenizer=tiny_tokenizer(),
        source=f"tiny-random-{model_type}",
        name=f"tiny-random-{model_type}",
    )


__all__ = [
    "HIDDEN",
    "LAYERS",
    "REAL_SHAPES",
    "SMALL_STUDY",
    "SMALL_STUDY_FLAGS",
    "TINY_CONFIGS",
    "VOCAB",
    "WIDTH",
    "HandTrial",
    "TinyStudy",
    "real_shape_config",
    "small_spec",
    "store_study",
    "synthetic_summary",
    "tiny_config",
    "tiny_loaded",
    "tiny_model",
    "tiny_sentencepiece_tokenizer",
    "tiny_tokenizer",
]
