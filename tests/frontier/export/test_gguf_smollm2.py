"""The real SmolLM2-135M, pruned per layer, exported to GGUF and run in llama.cpp itself.

Builds llama.cpp (libllama and frontier-logits only) once into FRONTIER_HOME when it is
not there yet: several minutes on two cores, then cached.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from frontier.export import export_model
from frontier.export import llamacpp as _llamacpp
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner

pytestmark = pytest.mark.slow

# the chosen point of studies/results/smollm2-135m-old-operator (trial 80): 33% of MLP
# neurons removed
WIDTHS = (1488,) * 3 + (608,) * 3 + (1272,) * 3 + (1320,) * 3 + (880,) * 3
WIDTHS += (776,) * 3 + (552,) * 3 + (992,) * 3 + (880,) * 3 + (1536,) * 3


@pytest.fixture(scope="module")
def smol() -> Iterator[Any]:
    from frontier.models import load_model

    _llamacpp.build(lambda _msg: None, tools=())
    yield load_model("smollm2-135m")


def _selection(smol: Any) -> Any:
    full = smol.adapter.full_widths(smol.model)
    gen = torch.Generator().manual_seed(0)
    pruner = Pruner(smol.model, [torch.rand(w, generator=gen) for w in full])
    return pruner.select(Plan(WIDTHS, full))


def test_per_layer_smollm2_runs_in_llamacpp_at_its_widths(smol: Any, tmp_path: Path) -> None:
    result = export_model(smol, _selection(smol), tmp_path / "f32", format="gguf")
    written, check = result.gguf, result.llamacpp
    assert written is not None and check is not None
    assert (written.arch, written.layout, written.widths) == ("deci", "exact", WIDTHS)
    assert check.checked and check.tokens >= 32
    assert check.max_abs_logprob_diff <= 1e-3  # the export itself enforces this too
    assert abs(check.ppl_llamacpp / check.ppl_transformers - 1) < 1e-4
    params = sum(p.numel() for p in smol.model.parameters())  # tied embedding once
    removed = 3 * 576 * (sum(smol.adapter.full_widths(smol.model)) - sum(WIDTHS))
    assert written.tensor_bytes == 4 * (params - removed)  # f32, nothing else written


def test_q8_0_smollm2_stays_close(smol: Any, tmp_path: Path) -> None:
    result = export_model(smol, _selection(smol), tmp_path / "q8", format="gguf", gguf_type="q8_0")
    written, check = result.gguf, result.llamacpp
    assert written is not None and check is not None and check.checked
    assert written.kept_f16 == ()
    assert abs(check.ppl_llamacpp / check.ppl_transformers - 1) < 0.02


def test_refitted_smollm2_runs_in_llamacpp_with_its_refitted_weights(
    smol: Any, tmp_path: Path
) -> None:
    # The default operator (obs + refit) on a small calibration: the GGUF carries the
    # refitted down projections, so llama.cpp matches the refitted model (the export's
    # own check compares against the model as applied, refit included) and not the plain cut.
    from frontier.data.text import TextSource, token_windows
    from frontier.importance import compute_scores
    from frontier.pruning.operator import PruningOperator

    cal = token_windows(
        TextSource("wiki-sample"), "calibration", smol.tokenizer, n_tokens=4096, seq_len=512
    )
    op = PruningOperator(smol.model, compute_scores(smol, "obs", cal, grams=True), refit=True)
    selection = op.select(Plan(WIDTHS, op.full))
    weights = op.weights(selection)
    assert weights is not None and any(w is not None for w in weights)
    refitted = export_model(smol, selection, tmp_path / "refit", format="gguf", refit=weights)
    plain = export_model(smol, selection, tmp_path / "plain", format="gguf")
    assert refitted.llamacpp is not None and refitted.llamacpp.checked
    assert plain.llamacpp is not None and plain.llamacpp.checked
    assert refitted.llamacpp.max_abs_logprob_diff <= 1e-3
    # the refit changed what llama.cpp computes: another perplexity than the plain cut
    ppl_refit, ppl_plain = refitted.llamacpp.ppl_llamacpp, plain.llamacpp.ppl_llamacpp
    assert abs(ppl_refit / ppl_plain - 1) > 1e-3
    assert (tmp_path / "refit" / "refit.safetensors").exists()
