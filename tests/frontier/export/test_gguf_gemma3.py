"""The real Gemma-3-270m, pruned, exported to GGUF with its sentencepiece-style tokenizer
and run in llama.cpp itself: same token ids on the check text, same log-probabilities.

Builds llama.cpp (libllama and frontier's two tools only) once into FRONTIER_HOME when it
is not there yet: several minutes on two cores, then cached.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from frontier.export import export_model
from frontier.export import llamacpp as _llamacpp
from frontier.export._gguf_vocab import BYTE, CONTROL, UNKNOWN, vocab_of
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner

pytestmark = pytest.mark.slow


def test_pruned_gemma3_with_its_own_tokenizer_runs_in_llamacpp(tmp_path: Path) -> None:
    from frontier.models import load_model

    _llamacpp.build(lambda _msg: None, tools=())
    lm = load_model("gemma3-270m")
    vocab = vocab_of(lm.tokenizer, int(lm.model.config.vocab_size))
    assert (vocab.model, vocab.add_bos, vocab.add_space_prefix) == ("llama", True, False)
    assert vocab.types.count(BYTE) == 256 and vocab.types[3] == UNKNOWN
    assert vocab.types[2] == CONTROL  # <bos>
    full = lm.adapter.full_widths(lm.model)
    widths = tuple(w - 128 * (i % 3) for i, w in enumerate(full))  # per layer, padded there
    pruner = Pruner(
        lm.model,
        [torch.rand(w, generator=torch.Generator().manual_seed(i)) for i, w in enumerate(full)],
    )
    result = export_model(lm, pruner.select(Plan(widths, full)), tmp_path / "f32", format="gguf")
    written, check = result.gguf, result.llamacpp
    assert written is not None and check is not None and check.checked
    assert (written.arch, written.layout) == ("gemma3", "padded")
    assert check.tokenizer_mismatch is None and check.tokenizer_tokens > 100
    assert check.max_abs_logprob_diff <= 3e-2  # gemma3's f32 tolerance (llama.cpp's GELU)
    assert abs(check.ppl_llamacpp / check.ppl_transformers - 1) < 1e-3
