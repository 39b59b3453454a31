"""The export-format registry: every row's contract, and a format added as one row."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from frontier.cli import build_parser
from frontier.errors import FrontierError
from frontier.export import RECORD_NAME, export_format, export_model, load_pruned
from frontier.export.formats import FORMATS, Format, formats_help, get_format
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import WIDTH, tiny_loaded


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_row_keeps_the_contract(name: str) -> None:
    row = FORMATS[name]
    assert row.name == name and row.help and row.load_hint
    assert row.name in formats_help() and row.help in formats_help()
    if row.checkpoint:  # a transformers checkpoint has a writer that resolves
        module, _, function = (row.writer or "").partition(":")
        assert callable(getattr(__import__(module, fromlist=[function]), function))
    else:
        assert row.writer is None and not row.remote_code
    if row.remote_code:
        assert "trust_remote_code" in row.load_hint


def test_the_cli_offers_every_format_and_refuses_others() -> None:
    args = build_parser().parse_args(["export", "s", "1", "--out", "o", "--format", "padded"])
    assert args.format == "padded"
    action = next(
        a
        for a in build_parser()._subparsers._group_actions[0].choices["export"]._actions  # type: ignore[union-attr]
        if a.dest == "format"
    )
    assert tuple(action.choices) == tuple(FORMATS)
    with pytest.raises(FrontierError, match="unknown export format 'onnx'; one of"):
        get_format("onnx")


def _write_twice_as_stock(tmp: Path, model: Any, adapter: Any, pruner: Any, *rest: Any) -> None:
    from frontier.export._writers import write_stock

    write_stock(tmp, model, adapter, pruner, *rest, pad=True)
    (tmp / "written-by-a-new-format").write_text("yes")


def test_a_new_format_is_one_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row naming its writer is all an export needs: it is written, reloaded the way
    its row says and checked, recorded under its name, and loaded back by name."""
    row = Format(
        "stock-copy",
        "a test format",
        f"{__name__}:_write_twice_as_stock",
        padded=True,
    )
    monkeypatch.setitem(FORMATS, row.name, row)
    lm = tiny_loaded("llama")
    full = lm.adapter.full_widths(lm.model)
    pruner = Pruner(lm.model, [torch.rand(w) for w in full])
    plan = pruner.select(Plan((16, 40, WIDTH), full))
    result = export_model(lm, plan, tmp_path / "x", format="stock-copy")
    assert (result.path / "written-by-a-new-format").read_text() == "yes"
    assert json.loads((result.path / RECORD_NAME).read_text())["export_format"] == "stock-copy"
    assert export_format(result.path) == "stock-copy"
    model, _ = load_pruned(result.path)
    assert result.max_abs_logit_diff < 1e-4 and model is not None
    broken = dataclasses.replace(row, writer=f"{__name__}:no_such_writer")
    monkeypatch.setitem(FORMATS, row.name, broken)
    with pytest.raises(AttributeError):
        export_model(lm, plan, tmp_path / "y", format="stock-copy")
    assert not (tmp_path / "y").exists()  # nothing left behind
