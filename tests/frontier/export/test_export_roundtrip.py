"""Every format of every supported family reloads to the in-memory pruned model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from frontier.export import RECORD_NAME, apply_compression, export_model, load_pruned
from frontier.models import fingerprint_model
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import TINY_CONFIGS, WIDTH, tiny_loaded

FAMILIES = sorted(TINY_CONFIGS)
# widths per format: heterogeneous has a full layer, padded a non-multiple-of-8 layer
PLANS = {
    "heterogeneous": (16, 40, WIDTH),
    "padded": (16, 40, 27),
    "uniform": (24, 24, 24),
}


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits.float()


def _reloaded(folder: Path, fmt: str) -> list[torch.nn.Module]:
    from transformers import AutoModelForCausalLM

    if fmt == "heterogeneous":
        return [
            load_pruned(folder)[0],
            AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval(),
        ]
    return [AutoModelForCausalLM.from_pretrained(folder).eval()]


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_all_formats(
    family: str, tmp_path: Path, same_tensors: Callable[[Path, Path], None]
) -> None:
    lm = tiny_loaded(family)
    full = lm.adapter.full_widths(lm.model)
    pruner = Pruner(lm.model, [torch.rand(w) for w in full])
    before = fingerprint_model(lm.model)
    ids = torch.randint(3, 300, (2, 11), generator=torch.Generator().manual_seed(1))
    dense = _logits(lm.model, ids)
    for fmt, widths in PLANS.items():
        selection = pruner.select(Plan(widths, full))
        with pruner.pruned(selection):
            expected = _logits(lm.model, ids)
        assert not torch.allclose(expected, dense)  # the plan really changes the model

        result = export_model(lm, selection, tmp_path / fmt, format=fmt)  # type: ignore[arg-type]
        assert fingerprint_model(lm.model) == before, "export must restore the model"
        assert result.max_abs_logit_diff <= 1e-5
        for model in _reloaded(result.path, fmt):
            torch.testing.assert_close(_logits(model, ids), expected, atol=1e-5, rtol=1e-5)

        record = json.loads((result.path / RECORD_NAME).read_text())
        assert record["plan"]["widths"] == list(widths)
        assert record["kept"] == selection.to_lists()
        assert record["source"]["fingerprint"] == before
        assert record["export_format"] == fmt
        assert set(record["versions"]) == {"torch", "transformers", "frontier"}
        for name in ("config.json", "generation_config.json", "tokenizer.json"):
            assert (result.path / name).is_file(), name

        again = apply_compression(result.path / RECORD_NAME, lm, tmp_path / f"{fmt}-applied")
        same_tensors(result.path, again.path)
        assert fingerprint_model(lm.model) == before
