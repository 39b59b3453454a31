"""A repaired model exported: the file holds the repaired weights and records the repair."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from frontier.errors import FrontierError
from frontier.export import apply_compression, export_model, load_pruned, read_record
from frontier.importance import calibrate
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.repair import RepairConfig, repair, repair_data
from frontier.repair._record import repair_record
from frontier.testing import tiny_loaded

SEQ = 64


@pytest.fixture
def repaired(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))
    lm = tiny_loaded("llama")
    lm.fingerprint  # noqa: B018 -- of the unpruned weights, before any plan is applied
    scores = calibrate(lm, "activation", n_tokens=512, seq_len=SEQ)
    pruner = Pruner(lm.model, scores.per_layer)
    data = repair_data(
        "wiki-sample", lm.tokenizer, seq_len=SEQ, heldout_tokens=256, max_train_tokens=SEQ * 40
    )
    config = RepairConfig(
        steps=6, batch_windows=2, seq_len=SEQ, lr=3e-3, heldout_tokens=256, eval_every=3, seed=5
    )
    plan = Plan.uniform(0.5, pruner.full, multiple=4)
    result = repair(pruner, plan, data, config)
    ids = data.heldout[:2]
    with torch.no_grad():
        logits = lm.model(input_ids=ids, use_cache=False).logits
    pruner.restore()
    return lm, pruner.select(plan), result, ids, logits


@pytest.mark.parametrize("fmt", ["heterogeneous", "padded"])
def test_the_export_holds_the_repaired_weights(repaired, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    lm, selection, result, ids, logits = repaired
    assert not result.rolled_back
    out = tmp_path / fmt
    rec = repair_record(result, report_after={"ppl_ratio": 1.5})
    export_model(lm, selection, out, format=fmt, modules=result.modules, repair=rec)
    model, _ = load_pruned(out)
    with torch.no_grad():
        got = model(input_ids=ids, use_cache=False).logits
    assert torch.allclose(got, logits, atol=1e-4, rtol=1e-4)
    written = read_record(out).repair
    assert written is not None
    assert written["seed"] == 5 and written["steps_run"] == result.steps_run
    assert written["tokens_trained"] == result.tokens_trained
    assert written["heldout_after"] == result.after.to_dict()
    assert written["data"]["fingerprint"] == result.data["fingerprint"]
    assert written["report"] == {"ppl_ratio": 1.5}
    with pytest.raises(FrontierError, match="only be reproduced by repeating the repair"):
        apply_compression(out, lm, tmp_path / "again")


def test_modules_of_another_width_are_refused(repaired, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lm, selection, result, _, _ = repaired
    wrong = [dict(layer) for layer in result.modules]
    wrong[0] = {"down_proj": torch.nn.Linear(7, 32, bias=False)}  # 7 neurons, not the plan's
    with pytest.raises(FrontierError, match="another width"):
        export_model(lm, selection, tmp_path / "x", modules=wrong)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
