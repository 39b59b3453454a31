"""``frontier repair --local`` and ``--local-then-global`` on a tiny study: the export
records the reconstruction, verify checks it, and apply rebuilds a local-only export bit
for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from frontier.cli import main
from frontier.export import read_record
from frontier.testing import TinyStudy

LOCAL = ["--seq-len", "64", "--heldout-tokens", "256", "--local-steps", "10", "--seed", "3"]
GLOBAL = ["--steps", "4", "--batch-windows", "2", "--lr", "3e-3", "--eval-every", "2"]


def test_local_repair_is_recorded_verified_and_applied_bit_for_bit(
    tiny_study: TinyStudy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["--storage", tiny_study.url]
    local, chained = tmp_path / "local", tmp_path / "chained"
    assert main(["repair", "s", *base, *LOCAL, "--local", "--out", str(local)]) == 0
    printed = capsys.readouterr()
    said = " ".join((printed.out + printed.err).split())
    assert "reconstruct: layer 1/" in said and "local reconstruction of 3 MLPs" in said

    rec = read_record(local)
    assert rec.repair is None and rec.reconstruct is not None
    r = rec.reconstruct
    assert r["seed"] == 3 and r["config"]["steps"] == 10 and r["data"]["role"] == "calibration"
    assert r["report"]["ppl_ratio"] > 0 and "ppl_ratio" in r["report_before"]
    assert r["heldout_error_after"] <= r["heldout_error_before"]
    assert main(["verify", "s", str(local), *base]) == 0
    assert "equal" in capsys.readouterr().out

    again = tmp_path / "again"
    args = ["apply", str(local), "--model", tiny_study.model, "--out", str(again)]
    assert main(args) == 0
    _same_tensors(local, again)

    argv = ["repair", "s", *base, *LOCAL, *GLOBAL, "--local-then-global", "--out", str(chained)]
    assert main(argv) == 0
    rec = read_record(chained)
    assert rec.repair is not None and rec.reconstruct is not None
    assert rec.repair["steps_run"] == 4


def _same_tensors(a: Path, b: Path) -> None:
    from safetensors.torch import load_file

    names = sorted(p.name for p in a.glob("*.safetensors"))
    assert "reconstruct.safetensors" in names
    assert names == sorted(p.name for p in b.glob("*.safetensors"))
    for name in names:
        ta, tb = load_file(str(a / name)), load_file(str(b / name))
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k].view(torch.uint8), tb[k].view(torch.uint8)), k


def test_local_and_local_then_global_exclude_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["repair", "r", "--local", "--local-then-global", "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit):
        main(argv)
    assert "not allowed with" in capsys.readouterr().err
