"""Exports of locally reconstructed models: every format holds the reconstructed
projections, ``compression.json`` says how they were made, and ``apply`` rebuilds the
export bit for bit from the original model and the stored weights."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from frontier.errors import FrontierError
from frontier.export import RECORD_NAME, apply_compression, export_model, load_pruned
from frontier.export._record import RECONSTRUCT_NAME
from frontier.importance import calibrate
from frontier.models import fingerprint_model
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.reconstruct import ReconstructConfig, reconstruct, reconstruct_record
from frontier.repair import repair_data
from frontier.testing import WIDTH, tiny_loaded

SEQ = 32


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits.float()


def _reconstructed(family: str, widths: tuple[int, ...]):  # type: ignore[no-untyped-def]
    lm = tiny_loaded(family)
    scores = calibrate(lm, "energy", n_tokens=512, seq_len=SEQ, grams=True)
    op = PruningOperator(lm.model, scores, refit=True)
    selection = op.select(Plan(widths, op.full))
    data = repair_data(
        "wiki-sample",
        lm.tokenizer,
        seq_len=SEQ,
        heldout_tokens=4 * SEQ,
        max_train_tokens=8 * SEQ,
    )
    config = ReconstructConfig(steps=20, batch_tokens=128, lr=3e-3, eval_every=5, seq_len=SEQ)
    probe = data.heldout[:1, :11]
    with op.pruned(selection):
        refit_only = _logits(lm.model, probe)
    result = reconstruct(op, selection, data, config)
    expected = _logits(lm.model, probe)
    op.restore()
    assert not torch.allclose(expected, refit_only)  # the reconstruction matters
    return lm, op, selection, result, probe, expected


@pytest.mark.parametrize(("family", "fmt"), [("llama", "heterogeneous"), ("gpt2", "padded")])
def test_reconstructed_export_equals_the_model_and_apply_rebuilds_it(
    family: str, fmt: str, tmp_path: Path, same_tensors: Callable[[Path, Path], None]
) -> None:
    widths = (16, 40, WIDTH)
    lm, op, selection, result, probe, expected = _reconstructed(family, widths)
    before = fingerprint_model(lm.model)
    out = export_model(
        lm,
        selection,
        tmp_path / "out",
        format=fmt,
        refit=op.weights(selection),
        modules=result.modules,
        reconstruct=reconstruct_record(result),
    )
    assert fingerprint_model(lm.model) == before
    if fmt == "heterogeneous":
        reloaded = load_pruned(out.path)[0]
    else:
        from transformers import AutoModelForCausalLM

        reloaded = AutoModelForCausalLM.from_pretrained(out.path).eval()
    torch.testing.assert_close(_logits(reloaded, probe), expected, atol=1e-4, rtol=1e-4)
    record = json.loads((out.path / RECORD_NAME).read_text())["reconstruct"]
    assert record["file"] == RECONSTRUCT_NAME and record["layers"] == [0, 1]
    assert record["seed"] == 0 and record["config"]["steps"] == 20
    assert record["data"]["train_tokens"] > 0 and len(record["layers"]) == 2
    assert record["heldout_error_after"] <= record["heldout_error_before"]

    again = apply_compression(out.path / RECORD_NAME, lm, tmp_path / "again")
    same_tensors(out.path, again.path)
    assert (again.path / RECONSTRUCT_NAME).read_bytes() == (
        out.path / RECONSTRUCT_NAME
    ).read_bytes()
    assert fingerprint_model(lm.model) == before


def test_apply_refuses_a_changed_reconstruct_file(tmp_path: Path) -> None:
    lm, op, selection, result, _, _ = _reconstructed("llama", (16, 40, WIDTH))
    out = export_model(
        lm,
        selection,
        tmp_path / "out",
        refit=op.weights(selection),
        modules=result.modules,
        reconstruct=reconstruct_record(result),
    )
    data = bytearray((out.path / RECONSTRUCT_NAME).read_bytes())
    data[-1] ^= 1
    (out.path / RECONSTRUCT_NAME).write_bytes(bytes(data))
    with pytest.raises(FrontierError, match="does not match the sha256"):
        apply_compression(out.path / RECORD_NAME, lm, tmp_path / "again")
