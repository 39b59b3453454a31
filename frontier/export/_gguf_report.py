"""What ``frontier export --format gguf`` prints: the file, its layout, the llama.cpp check."""

from __future__ import annotations

from typing import Any


def gguf_lines(result: Any) -> list[str]:
    """Plain lines for an :class:`~frontier.export.ExportResult` of format ``gguf``."""
    written, check = result.gguf, result.llamacpp
    lines = [
        f"{written.path}: GGUF {written.gguf_type}, {written.tensor_bytes / 1e6:.1f} MB of tensors",
        written.message,
    ]
    if written.kept_f16:
        lines.append(
            f"{len(written.kept_f16)} tensors kept at f16 (rows not whole q8_0 blocks of 32)"
        )
    lines.extend(written.notes)
    if check is None or not check.checked:
        lines.append(check.skipped if check is not None else "not run in llama.cpp")
    else:
        lines.append(
            f"llama.cpp vs transformers on {check.tokens} tokens of fixed text: max |log-prob "
            f"difference| {check.max_abs_logprob_diff:.2e}, perplexity {check.ppl_llamacpp:.4f}"
            f" vs {check.ppl_transformers:.4f}"
        )
    lines.append(f"run with llama.cpp: llama-cli -m {written.path}")
    return lines
