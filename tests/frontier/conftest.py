from __future__ import annotations

from pathlib import Path

import pytest

from frontier.testing import tiny_model, tiny_tokenizer


@pytest.fixture
def tiny_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny random llama saved as a local HF folder; FRONTIER_HOME in tmp (shared by the
    search, CLI and repair tests)."""
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))
    folder = tmp_path / "tiny-llama"
    tiny_model("llama").save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder
