"""``frontier repair`` on a tiny study: the export, its record, verify and apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from frontier.cli import main
from frontier.export import read_record
from frontier.testing import TinyStudy

REPAIR = [
    "--steps",
    "6",
    "--batch-windows",
    "2",
    "--seq-len",
    "64",
    "--lr",
    "3e-3",
    "--heldout-tokens",
    "256",
    "--eval-every",
    "3",
    "--seed",
    "7",
]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_repair_exports_a_recorded_repair_that_verify_checks_and_apply_refuses(
    tiny_study: TinyStudy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = tiny_study.chosen
    base = ["--storage", tiny_study.url]
    plain, repaired = tmp_path / "plain", tmp_path / "repaired"
    assert main(["export", "s", str(chosen.number), *base, "--out", str(plain)]) == 0
    assert main(["repair", "s", *base, *REPAIR, "--out", str(repaired)]) == 0  # chosen point
    out = capsys.readouterr().out
    assert f"trial {chosen.number}: held-out ppl ratio" in out and "tokens/s" in out

    rec = read_record(repaired)
    assert rec.provenance.trial == chosen.number and rec.kept == read_record(plain).kept
    r = rec.repair
    assert r is not None
    assert r["seed"] == 7 and r["optimizer"]["lr"] == 3e-3 and r["loss"]["kl_temperature"] == 1.0
    assert r["data"]["role"] == "calibration" and r["data"]["never_read"] == ["search", "report"]
    assert r["steps_run"] == 6 and r["tokens_trained"] == 6 * 2 * 63
    assert r["heldout_history"][0]["step"] == 0
    assert r["heldout_after"]["loss"] <= r["heldout_before"]["loss"]
    assert r["report"]["ppl_ratio"] > 0 and "ppl_ratio" in r["report_before"]
    raw = json.loads((repaired / "compression.json").read_text())
    assert raw["repair"]["config"]["steps"] == 6
    if not r["rolled_back"]:  # the repaired weights are what was written
        a, b = _weights(plain), _weights(repaired)
        assert any(not torch.equal(a[k], b[k]) for k in a if "mlp" in k)

    assert main(["verify", "s", str(repaired), *base]) == 0  # against the repair's figures
    assert "equal" in capsys.readouterr().out

    again = tmp_path / "again"
    args = ["apply", str(repaired), "--model", tiny_study.model, "--out", str(again)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "only be reproduced by repeating the repair" in err and "--seed 7" in err
    assert len(err.strip().splitlines()) == 1 and not again.exists()
