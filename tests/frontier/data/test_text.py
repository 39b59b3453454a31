from __future__ import annotations

from pathlib import Path

import pytest
import torch

from frontier.data.text import ROLES, WIKI_LABEL, TextSource, token_windows
from frontier.errors import FrontierError
from frontier.testing import tiny_tokenizer


def test_wiki_sample_roles_are_disjoint_and_cover_everything() -> None:
    src = TextSource()
    parts = {r: src.documents(r) for r in ROLES}
    assert all(parts.values())
    sets = {r: set(d) for r, d in parts.items()}
    assert not sets["calibration"] & sets["search"]
    assert not sets["calibration"] & sets["report"]
    assert not sets["search"] & sets["report"]
    assert sum(len(p) for p in parts.values()) > 2000
    assert "not WikiText-2" in src.label == WIKI_LABEL


def test_file_source_and_windows(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("\n\n".join(f"document number {i} " * 20 for i in range(30)))
    src = TextSource(f"file:{path}")
    tok = tiny_tokenizer()
    ts = token_windows(src, "search", tok, n_tokens=64, seq_len=16)
    assert tuple(ts.ids.shape) == (4, 16)
    again = token_windows(src, "search", tok, n_tokens=64, seq_len=16)
    assert again.fingerprint == ts.fingerprint
    other = token_windows(src, "report", tok, n_tokens=64, seq_len=16)
    assert other.fingerprint != ts.fingerprint
    with pytest.raises(FrontierError, match="fewer than"):
        token_windows(src, "search", tok, n_tokens=10**7, seq_len=16)


def test_strided_windows_spread_over_the_whole_part(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("\n\n".join(f"document number {i} " * 20 for i in range(30)))
    src = TextSource(f"file:{path}")
    tok = tiny_tokenizer()
    ids = tok("\n\n".join(src.documents("search")), add_special_tokens=False)["input_ids"]
    first = token_windows(src, "search", tok, n_tokens=64, seq_len=16)
    spread = token_windows(src, "search", tok, n_tokens=64, seq_len=16, strided=True)
    room = len(ids) - 16
    assert room > 4 * 16  # the part is longer than the windows: they are spread out
    starts = [0, room // 3, 2 * room // 3, room]
    assert spread.ids.tolist() == [ids[s : s + 16] for s in starts]
    assert spread.ids[0].tolist() == first.ids[0].tolist()  # both start at the part's start
    assert spread.ids[-1].tolist() == ids[-16:]  # the last window ends the part
    assert spread.fingerprint != first.fingerprint
    assert spread.strided and not first.strided
    assert "strides" in spread.describe()["layout"] and "first" in first.describe()["layout"]
    one = token_windows(src, "search", tok, n_tokens=16, seq_len=16, strided=True)
    assert one.ids.tolist() == [ids[:16]]


def test_bad_sources_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(FrontierError, match="unknown text source"):
        TextSource("nope").documents("search")
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("only one document")
    with pytest.raises(FrontierError, match="at least 3"):
        TextSource(f"file:{tiny}").documents("search")


def test_skipped_windows_start_where_the_first_ones_end(tmp_path: Path) -> None:
    # the validation part: the same role's text after the tokens the report reads
    path = tmp_path / "t.txt"
    path.write_text("\n\n".join(f"document number {i} " * 20 for i in range(30)))
    src = TextSource(f"file:{path}")
    tok = tiny_tokenizer()
    first = token_windows(src, "report", tok, n_tokens=64, seq_len=16)
    after = token_windows(src, "report", tok, n_tokens=32, seq_len=16, skip=64)
    both = token_windows(src, "report", tok, n_tokens=96, seq_len=16)
    assert both.ids.tolist() == first.ids.tolist() + after.ids.tolist()
    assert after.fingerprint != first.fingerprint


def test_a_roles_ids_are_tokenised_once_per_text_and_tokenizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole role is tokenised once and kept for the next windows of the same text and
    tokenizer; another tokenizer or another text is tokenised afresh, never served
    another's ids."""
    from collections import OrderedDict

    from transformers import PreTrainedTokenizerFast

    from frontier.data import text as text_mod
    from frontier.testing import tiny_sentencepiece_tokenizer

    path = tmp_path / "t.txt"
    path.write_text("\n\n".join(f"document number {i} " * 20 for i in range(30)))
    src = TextSource(f"file:{path}")
    byte, piece = tiny_tokenizer(), tiny_sentencepiece_tokenizer()
    joined = "\n\n".join(src.documents("search"))
    fresh = {
        name: tok(joined, add_special_tokens=False)["input_ids"]
        for name, tok in (("byte", byte), ("piece", piece))
    }
    assert fresh["byte"][:64] != fresh["piece"][:64]
    monkeypatch.setattr(text_mod, "_ENCODED", OrderedDict())
    calls: list[str] = []
    real = PreTrainedTokenizerFast.__call__

    def counted(self: object, text: str, **kw: object) -> object:
        calls.append(text[:20])
        return real(self, text, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(PreTrainedTokenizerFast, "__call__", counted)
    first = token_windows(src, "search", byte, n_tokens=64, seq_len=16)
    assert first.ids.flatten().tolist() == fresh["byte"][:64] and len(calls) == 1
    spread = token_windows(src, "search", byte, n_tokens=48, seq_len=16, strided=True, skip=5)
    assert len(calls) == 1  # the same text and tokenizer: the kept ids
    room = len(fresh["byte"]) - 5 - 16
    starts = [5 + i * room // 2 for i in range(3)]
    assert spread.ids.tolist() == [fresh["byte"][s : s + 16] for s in starts]
    other = token_windows(src, "search", piece, n_tokens=64, seq_len=16)
    assert other.ids.flatten().tolist() == fresh["piece"][:64] and len(calls) == 2
    token_windows(src, "report", byte, n_tokens=64, seq_len=16)  # another text
    assert len(calls) == 3
    same = tmp_path / "same.txt"  # another file of the same text: the kept ids
    same.write_text(path.read_text())
    token_windows(TextSource(f"file:{same}"), "search", byte, n_tokens=64, seq_len=16)
    assert len(calls) == 3
    changed = tmp_path / "changed.txt"
    changed.write_text("\n\n".join(f"another text {i} " * 20 for i in range(30)))
    src = TextSource(f"file:{changed}")
    expected = real(byte, "\n\n".join(src.documents("search")), add_special_tokens=False)
    now = token_windows(src, "search", byte, n_tokens=64, seq_len=16)
    assert now.ids.flatten().tolist() == expected["input_ids"][:64] and len(calls) == 4
    assert now.ids.dtype == first.ids.dtype == spread.ids.dtype == torch.long
    # a role of more ids than the cap is never kept: tokenised each time
    monkeypatch.setattr(text_mod, "_ENCODED_MAX_IDS", 63)
    for n in (5, 6):
        again = token_windows(src, "report", byte, n_tokens=64, seq_len=16)
        assert len(calls) == n and again.ids.dtype == torch.long
