"""``frontier verify``: an export re-measured with its study's report protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from frontier.cli import main
from frontier.errors import FrontierError
from frontier.search.find import find
from frontier.search.verify import verify_export
from frontier.study.read import final_record
from frontier.testing import small_spec


def test_verify_passes_on_the_export_and_catches_a_changed_one(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = small_spec(tiny_folder, f"sqlite:///{tmp_path}/v.db", study="v", trials=6)
    result = find(spec)
    chosen = result.chosen
    assert chosen is not None
    out = tmp_path / "export"
    base = ["--storage", spec.storage_url]
    assert main(["export", "v", str(chosen.number), *base, "--out", str(out)]) == 0
    assert main(["verify", "v", str(out), *base]) == 0
    assert "equal" in capsys.readouterr().out
    checked = verify_export(result.study, out)
    assert checked.ok and {c.metric for c in checked.checks} == {"ppl", "ppl_ratio"}

    # weights changed after export: the figures no longer match, exit 1
    weights = out / "model.safetensors"
    state = load_file(str(weights))
    key = next(k for k in state if k.endswith("down_proj.weight"))
    state[key] = state[key] * 0.5
    save_file(state, str(weights), metadata={"format": "pt"})
    assert main(["verify", "v", str(out), *base]) == 1
    assert not verify_export(result.study, out).ok

    # an export of another study is a one-line error, exit 2
    record = json.loads((out / "compression.json").read_text())
    record["study"] = "other"
    (out / "compression.json").write_text(json.dumps(record))
    with pytest.raises(FrontierError, match="not from study 'v'"):
        verify_export(result.study, out)
    assert main(["verify", "v", str(out), *base]) == 2


def test_verify_needs_a_trial_measured_for_the_report(tiny_folder: Path, tmp_path: Path) -> None:
    spec = small_spec(
        tiny_folder, f"sqlite:///{tmp_path}/w.db", study="w", trials=6, report_points=1
    )
    result = find(spec)
    unmeasured = [t for t in result.study.trials if final_record(result.study, t) is None]
    assert unmeasured
    out = tmp_path / "x"
    base = ["--storage", spec.storage_url]
    assert main(["export", "w", str(unmeasured[0].number), *base, "--out", str(out)]) == 0
    with pytest.raises(FrontierError, match="never re-measured"):
        verify_export(result.study, out)
