from __future__ import annotations

from pathlib import Path

import pytest

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
