"""Refusals and validation: every one is a one-line FrontierError, and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from frontier.errors import FrontierError
from frontier.export import RECORD_NAME, apply_compression, export_model, read_record
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner, Selection
from frontier.testing import tiny_loaded


def _selection(lm: object, widths: tuple[int, ...]) -> Selection:
    model = lm.model  # type: ignore[attr-defined]
    full = lm.adapter.full_widths(model)  # type: ignore[attr-defined]
    return Pruner(model, [torch.rand(w) for w in full]).select(Plan(widths, full))


def _one_line(exc: pytest.ExceptionInfo[FrontierError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lm = tiny_loaded("llama")
    return export_model(lm, _selection(lm, (16, 40, 64)), tmp_path_factory.mktemp("e") / "x").path


def test_non_empty_out_is_refused_unless_forced(tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FrontierError) as exc:
        export_model(lm, _selection(lm, (16, 16, 16)), out)
    assert "not empty" in _one_line(exc)
    assert (out / "keep.txt").read_text() == "mine"
    export_model(lm, _selection(lm, (16, 16, 16)), out, force=True)
    assert not (out / "keep.txt").exists() and (out / RECORD_NAME).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_empty_out_folder_is_fine(tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    (tmp_path / "out").mkdir()
    result = export_model(lm, _selection(lm, (16, 16, 16)), tmp_path / "out", format="uniform")
    assert result.path == tmp_path / "out"
    record = read_record(tmp_path / "out" / RECORD_NAME)
    assert record.export_format == "uniform" and record.plan.widths == (16, 16, 16)
    assert (tmp_path / "out" / "config.json").is_file()


def test_uniform_refuses_a_non_uniform_plan(tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    with pytest.raises(FrontierError) as exc:
        export_model(lm, _selection(lm, (16, 40, 64)), tmp_path / "u", format="uniform")
    assert "uniform" in _one_line(exc)
    assert not (tmp_path / "u").exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "",
        lambda text: text.replace('"kept"', '"kpet"'),
        lambda text: text.replace('"export_format": "heterogeneous"', '"export_format": "zip"'),
        lambda text: "[1, 2]",
        lambda text: "\xff\xfe garbage",
    ],
)
def test_corrupted_record_is_a_one_line_error(
    exported: Path, tmp_path: Path, damage: object
) -> None:
    bad = tmp_path / RECORD_NAME
    bad.write_text(damage((exported / RECORD_NAME).read_text()), encoding="latin-1")  # type: ignore[operator]
    with pytest.raises(FrontierError) as exc:
        read_record(bad)
    assert str(bad) in _one_line(exc)
    with pytest.raises(FrontierError):
        apply_compression(bad, tiny_loaded("llama"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_kept_indices_inconsistent_with_plan(exported: Path, tmp_path: Path) -> None:
    data = json.loads((exported / RECORD_NAME).read_text())
    data["kept"][0] = data["kept"][0][:-1]
    (tmp_path / RECORD_NAME).write_text(json.dumps(data))
    with pytest.raises(FrontierError) as exc:
        apply_compression(tmp_path / RECORD_NAME, tiny_loaded("llama"), tmp_path / "out")
    assert "kept" in _one_line(exc)
    assert not (tmp_path / "out").exists()


def test_source_fingerprint_mismatch(exported: Path, tmp_path: Path) -> None:
    other = tiny_loaded("llama", seed=1)
    with pytest.raises(FrontierError) as exc:
        apply_compression(exported, other, tmp_path / "out")
    assert "fingerprint" in _one_line(exc)
    result = apply_compression(exported, other, tmp_path / "out", check_source=False)
    assert result.record.source.fingerprint == other.fingerprint


def test_other_family_is_refused(exported: Path, tmp_path: Path) -> None:
    with pytest.raises(FrontierError) as exc:
        apply_compression(exported, tiny_loaded("qwen2"), tmp_path / "out")
    assert "llama" in _one_line(exc)


def test_selection_for_other_widths_is_refused(tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    bad = Selection.from_lists(Plan((8, 8), (16, 16)), [list(range(8))] * 2)
    with pytest.raises(FrontierError) as exc:
        export_model(lm, bad, tmp_path / "o")
    message = _one_line(exc)
    assert "widths that differ from this model" in message
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("format", ["padded", "heterogeneous"])
def test_export_check_refuses_a_checkpoint_that_reloads_differently(
    format: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the folder as written reloads with other logits (here: one weight nudged on load)
    import transformers

    import frontier.export._export as export_mod

    def nudged(model: torch.nn.Module) -> torch.nn.Module:
        with torch.no_grad():
            next(p for p in model.parameters() if p.dim() == 2).add_(0.05)
        return model

    real_from_pretrained = transformers.AutoModelForCausalLM.from_pretrained
    real_load_pruned = export_mod.load_pruned
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM,
        "from_pretrained",
        lambda *a, **kw: nudged(real_from_pretrained(*a, **kw)),
    )
    monkeypatch.setattr(
        export_mod,
        "load_pruned",
        lambda *a, **kw: (nudged(real_load_pruned(*a, **kw)[0]), None),
    )
    lm = tiny_loaded("llama")
    with pytest.raises(FrontierError) as exc:
        export_model(lm, _selection(lm, (16, 40, 64)), tmp_path / "out", format=format)  # type: ignore[arg-type]
    message = _one_line(exc)
    assert message.startswith("export check failed: reloading with")
    assert "nothing written" in message
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
