"""A study's chosen trial exported from the CLI, reloaded, and rebuilt by apply."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from frontier.cli import main
from frontier.export import load_pruned
from frontier.search.find import find
from frontier.testing import small_spec


def test_export_then_apply_is_bit_identical(tiny_folder: Path, tmp_path: Path) -> None:
    spec = small_spec(tiny_folder, f"sqlite:///{tmp_path}/e.db", study="e", trials=6)
    chosen = find(spec).chosen
    assert chosen is not None
    out, again = tmp_path / "export", tmp_path / "again"
    args = ["export", "e", str(chosen.number), "--storage", spec.storage_url, "--out", str(out)]
    assert main(args) == 0
    record = json.loads((out / "compression.json").read_text())
    assert record["study"] == "e" and record["trial"] == chosen.number
    assert record["criterion"] == spec.criterion == "obs-greedy"
    assert record["calibration_fingerprint"]
    assert record["operator"]["name"] == "obs-greedy+refit"
    assert len(record["operator"]["alpha"]) == 3
    assert record["refit"]["file"] == "refit.safetensors" and (out / "refit.safetensors").is_file()
    assert record["plan"]["widths"] == chosen.user_attrs["frontier:plan"]["widths"]
    assert "final:ppl_ratio" in record["metrics"] and "search:ppl_ratio" in record["metrics"]
    model, _tok = load_pruned(out)
    widths = [layer.mlp.down_proj.in_features for layer in model.model.layers]
    assert widths == record["plan"]["widths"]
    assert (
        main(
            [
                "apply",
                str(out / "compression.json"),
                "--model",
                str(tiny_folder),
                "--out",
                str(again),
            ]
        )
        == 0
    )
    a, b = load_file(str(out / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (out / "refit.safetensors").read_bytes() == (again / "refit.safetensors").read_bytes()
    # an existing non-empty output folder is refused without --force
    assert main(args) == 2
    assert main([*args, "--force"]) == 0
