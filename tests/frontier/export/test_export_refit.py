"""Refitted exports: the refitted weights are what every format holds, and ``apply``
rebuilds them bit for bit from the original model and the record."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from frontier.data.text import TokenSet
from frontier.errors import FrontierError
from frontier.export import RECORD_NAME, apply_compression, export_model, load_pruned
from frontier.export._record import REFIT_NAME
from frontier.importance import compute_scores
from frontier.models import fingerprint_model
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.testing import WIDTH, tiny_loaded


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits.float()


@pytest.mark.parametrize(
    ("family", "fmt"), [("llama", "heterogeneous"), ("gpt2", "padded"), ("phi3", "uniform")]
)
def test_refitted_export_equals_the_refitted_model_and_apply_rebuilds_it(
    family: str, fmt: str, tmp_path: Path, same_tensors: Callable[[Path, Path], None]
) -> None:
    lm = tiny_loaded(family)
    ids = torch.randint(0, 300, (16, 16), generator=torch.Generator().manual_seed(3))
    scores = compute_scores(lm, "energy", TokenSet(ids, "r", "calibration", 16, "r"), grams=True)
    op = PruningOperator(lm.model, scores, refit=True)
    widths = (24, 24, 24) if fmt == "uniform" else (16, 40, WIDTH)
    selection = op.select(Plan(widths, op.full))
    probe = ids[:2, :11]
    with op.pruned(selection):
        expected = _logits(lm.model, probe)
    plain = PruningOperator(lm.model, scores, refit=False)
    with plain.pruned(selection):
        assert not torch.allclose(_logits(lm.model, probe), expected)  # the refit matters
    before = fingerprint_model(lm.model)

    result = export_model(lm, selection, tmp_path / "out", format=fmt, refit=op.weights(selection))  # type: ignore[arg-type]
    assert fingerprint_model(lm.model) == before
    if fmt == "heterogeneous":
        reloaded = load_pruned(result.path)[0]
    else:
        from transformers import AutoModelForCausalLM

        reloaded = AutoModelForCausalLM.from_pretrained(result.path).eval()
    torch.testing.assert_close(_logits(reloaded, probe), expected, atol=1e-4, rtol=1e-4)
    record = json.loads((result.path / RECORD_NAME).read_text())
    assert record["refit"]["file"] == REFIT_NAME and (result.path / REFIT_NAME).is_file()
    assert record["refit"]["layers"] == [i for i, w in enumerate(widths) if w < WIDTH]

    again = apply_compression(result.path / RECORD_NAME, lm, tmp_path / "again")
    same_tensors(result.path, again.path)
    assert (again.path / REFIT_NAME).read_bytes() == (result.path / REFIT_NAME).read_bytes()


def test_apply_refuses_a_changed_refit_file(tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    ids = torch.randint(0, 300, (16, 16), generator=torch.Generator().manual_seed(3))
    scores = compute_scores(lm, "energy", TokenSet(ids, "r", "calibration", 16, "r"), grams=True)
    op = PruningOperator(lm.model, scores, refit=True)
    selection = op.select(Plan.uniform(0.5, op.full, multiple=4, floor=4))
    result = export_model(lm, selection, tmp_path / "out", refit=op.weights(selection))
    data = bytearray((result.path / REFIT_NAME).read_bytes())
    data[-1] ^= 1
    (result.path / REFIT_NAME).write_bytes(bytes(data))
    with pytest.raises(FrontierError, match="does not match the sha256"):
        apply_compression(result.path / RECORD_NAME, lm, tmp_path / "again")
