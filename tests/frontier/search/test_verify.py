"""``frontier verify``: an export re-measured with its study's report protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from frontier.cli import main
from frontier.errors import FrontierError
from frontier.search.verify import verify_export
from frontier.study.read import final_record
from frontier.testing import TinyStudy


def test_verify_passes_on_the_export_and_catches_a_changed_one(
    tiny_study: TinyStudy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, chosen = tiny_study.name, tiny_study.chosen
    out = tmp_path / "export"
    base = ["--storage", tiny_study.url]
    assert main(["export", name, str(chosen.number), *base, "--out", str(out)]) == 0
    assert main(["verify", name, str(out), *base]) == 0
    assert "equal" in capsys.readouterr().out
    checked = verify_export(tiny_study.study, out)
    assert checked.ok and {c.metric for c in checked.checks} == {"ppl", "ppl_ratio"}

    # weights changed after export: the figures no longer match, exit 1
    weights = out / "model.safetensors"
    state = load_file(str(weights))
    key = next(k for k in state if k.endswith("down_proj.weight"))
    state[key] = state[key] * 0.5
    save_file(state, str(weights), metadata={"format": "pt"})
    assert main(["verify", name, str(out), *base]) == 1
    assert not verify_export(tiny_study.study, out).ok

    # an export of another study is a one-line error, exit 2
    record = json.loads((out / "compression.json").read_text())
    record["study"] = "other"
    (out / "compression.json").write_text(json.dumps(record))
    with pytest.raises(FrontierError, match=f"not from study '{name}'"):
        verify_export(tiny_study.study, out)
    assert main(["verify", name, str(out), *base]) == 2


def test_verify_needs_a_trial_measured_for_the_report(
    tiny_study: TinyStudy, tmp_path: Path
) -> None:
    study = tiny_study.study
    unmeasured = [t for t in study.trials if final_record(study, t) is None]
    assert unmeasured
    out = tmp_path / "x"
    base = ["--storage", tiny_study.url]
    assert (
        main(["export", tiny_study.name, str(unmeasured[0].number), *base, "--out", str(out)]) == 0
    )
    with pytest.raises(FrontierError, match="never re-measured"):
        verify_export(study, out)
