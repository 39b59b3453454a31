"""End to end on the real SmolLM2-135M: heterogeneous and padded exports reload exactly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from frontier.export import apply_compression, export_model, load_pruned
from frontier.models import fingerprint_model
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol() -> Iterator[Any]:
    from frontier.models import load_model

    yield load_model("smollm2-135m")


def _random_plan(full: tuple[int, ...], removed: float, seed: int) -> Plan:
    gen = torch.Generator().manual_seed(seed)
    keep = (1 - removed) + 0.2 * (torch.rand(len(full), generator=gen) - 0.5)
    return Plan.from_ratios(keep.clamp(0.05, 1.0).tolist(), full, multiple=64)


@pytest.mark.parametrize("fmt", ["heterogeneous", "padded"])
def test_smollm2_export_reloads_exactly(
    smol: Any, fmt: str, tmp_path: Path, same_tensors: Callable[[Path, Path], None]
) -> None:
    model = smol.model
    full = smol.adapter.full_widths(model)
    before = fingerprint_model(model)
    pruner = Pruner(model, [torch.rand(w) for w in full])
    selection = pruner.select(_random_plan(full, 0.5, seed=0))
    text = "The capital of France is Paris. The capital of Germany is"
    ids = smol.tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad(), pruner.pruned(selection):
        expected = model(input_ids=ids).logits

    result = export_model(smol, selection, tmp_path / fmt, format=fmt)  # type: ignore[arg-type]
    assert fingerprint_model(model) == before
    reloaded, tokenizer = load_pruned(result.path)
    assert tokenizer(text, return_tensors="pt").input_ids.equal(ids)
    with torch.no_grad():
        got = reloaded(input_ids=ids).logits
    # padded: float summation order differs (see frontier.export._export.PADDED_OF_MAX)
    atol = 1e-5 + (2e-5 * float(expected.abs().max()) if fmt == "padded" else 0.0)
    torch.testing.assert_close(got, expected, atol=atol, rtol=1e-5)
    original = sum(p.stat().st_size for p in Path(smol.local_dir).glob("*.safetensors"))
    assert result.weights_bytes < original

    again = apply_compression(result.path, smol, tmp_path / f"{fmt}-again")
    same_tensors(result.path, again.path)
