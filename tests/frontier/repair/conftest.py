from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from frontier.testing import tiny_model, tiny_tokenizer


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    # The CPU is shared: one torch thread per test process.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny random llama saved as a local HF folder; FRONTIER_HOME in tmp."""
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))
    folder = tmp_path / "tiny-llama"
    tiny_model("llama").save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder
