"""Real model shapes for tests and benchmarks: published configs, random weights.

Re-exported by :mod:`frontier.testing`.
"""

from __future__ import annotations

from typing import Any

_LLAMA3 = {
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "rope_theta": 500000.0,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
}
#: Real shapes from published configs (for time and memory with random weights: built
#: with ``from_config``, their perplexity means nothing). Plain RoPE: speed and memory do
#: not depend on its scaling.
REAL_SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "smollm2-135m": (
        "LlamaConfig",
        {
            "hidden_size": 576,
            "intermediate_size": 1536,
            "num_hidden_layers": 30,
            "num_attention_heads": 9,
            "num_key_value_heads": 3,
            "head_dim": 64,
            "vocab_size": 49152,
            "tie_word_embeddings": True,
            "rope_theta": 100000.0,
            "max_position_embeddings": 8192,
            "rms_norm_eps": 1e-5,
        },
    ),
    "llama-3.2-1b": (
        "LlamaConfig",
        {
            **_LLAMA3,
            "hidden_size": 2048,
            "intermediate_size": 8192,
            "num_hidden_layers": 16,
            "head_dim": 64,
            "tie_word_embeddings": True,
        },
    ),
    "gemma-2-2b": (
        "Gemma2Config",
        {
            "hidden_size": 2304,
            "intermediate_size": 9216,
            "num_hidden_layers": 26,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "vocab_size": 256000,
            "max_position_embeddings": 8192,
        },
    ),
    "llama-3.1-8b": (
        "LlamaConfig",
        {
            **_LLAMA3,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "head_dim": 128,
            "tie_word_embeddings": False,
        },
    ),
}


def real_shape_config(name: str) -> Any:
    """The config of one of :data:`REAL_SHAPES` (no weights)."""
    import transformers

    cls_name, kwargs = REAL_SHAPES[name]
    return getattr(transformers, cls_name)(**kwargs)
