"""Repair reads calibration text only, and its held-out slice is other documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from frontier.data.text import TextSource
from frontier.errors import FrontierError
from frontier.repair import repair_data
from frontier.repair._data import split_documents
from frontier.testing import tiny_tokenizer


def _source(tmp_path: Path, n: int = 40) -> str:
    docs = [f"doc{i} " + "the quick brown fox. " * 30 + f"end{i}" for i in range(n)]
    path = tmp_path / "text.txt"
    path.write_text("\n\n".join(docs))
    return f"file:{path}"


def _doc_ids(text: str) -> set[int]:
    return {int(m) for m in re.findall(r"doc(\d+)", text)}


def test_repair_text_is_calibration_only_and_held_out_by_document(tmp_path: Path) -> None:
    spec = _source(tmp_path)
    tok = tiny_tokenizer()
    data = repair_data(spec, tok, seq_len=32, heldout_tokens=256)
    train_ids = _doc_ids(tok.decode(data.train.flatten().tolist()))
    held_ids = _doc_ids(tok.decode(data.heldout.flatten().tolist()))
    source = TextSource(spec)
    role_ids = {
        r: _doc_ids(" ".join(source.documents(r))) for r in ("calibration", "search", "report")
    }
    assert train_ids and held_ids
    assert train_ids | held_ids <= role_ids["calibration"]
    assert not (train_ids | held_ids) & (role_ids["search"] | role_ids["report"])
    assert not train_ids & held_ids
    desc = data.describe()
    assert desc["role"] == "calibration"
    assert desc["heldout_tokens"] == data.heldout.numel() <= 256
    assert max(data.train_documents) < min(data.heldout_documents)
    assert desc["train_documents"] + desc["heldout_documents"] <= len(
        source.documents("calibration")
    )


def test_training_tokens_are_capped_and_windows_are_whole(tmp_path: Path) -> None:
    data = repair_data(
        _source(tmp_path), tiny_tokenizer(), seq_len=16, heldout_tokens=64, max_train_tokens=160
    )
    assert tuple(data.train.shape) == (10, 16)
    assert tuple(data.heldout.shape) == (4, 16)


def test_split_documents_keeps_both_parts_non_empty() -> None:
    assert split_documents(2, 0.1) == ([0], [1])
    train, held = split_documents(100, 0.1)
    assert len(held) == 10 and not set(train) & set(held) and len(train) + len(held) == 100
    with pytest.raises(FrontierError, match="at least 2"):
        split_documents(1, 0.1)
