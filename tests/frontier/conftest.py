from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from frontier.testing import TinyStudy, small_spec, tiny_model, tiny_tokenizer


@pytest.fixture
def tiny_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny random llama saved as a local HF folder; FRONTIER_HOME in tmp (shared by the
    search, CLI and repair tests)."""
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))
    folder = tmp_path / "tiny-llama"
    tiny_model("llama").save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


@dataclass(frozen=True)
class _Made:
    model: Path  # the tiny llama's folder (kept for the session)
    db: Path  # the study's SQLite file: copied, never changed
    home: Path  # the FRONTIER_HOME it was made in (its calibration and baseline caches)


TINY_STUDY_TRIALS = 6


@pytest.fixture(scope="session")
def _made_tiny_study(tmp_path_factory: pytest.TempPathFactory) -> _Made:
    """One finished tiny study for the session (what many tests ran a study of their own
    for: export, verify, repair, the CLI's readers)."""
    import torch

    from frontier.search.find import find

    root = tmp_path_factory.mktemp("tiny-study")
    model = root / "tiny-llama"
    tiny_model("llama").save_pretrained(model)
    tiny_tokenizer().save_pretrained(model)
    made = _Made(model, root / "s.db", root / "home")
    threads = torch.get_num_threads()
    # the same study whichever test asks first (one thread: the repair tests' setting)
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("FRONTIER_HOME", str(made.home))
            torch.manual_seed(0)
            find(small_spec(model, f"sqlite:///{made.db}", trials=TINY_STUDY_TRIALS))
    finally:
        torch.set_num_threads(threads)
    return made


@pytest.fixture
def tiny_study(
    _made_tiny_study: _Made, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> TinyStudy:
    """This test's copy of the session's finished tiny study: its database, and its
    FRONTIER_HOME (calibration caches: a rebuild reads them as the study's own run would);
    change either freely."""
    from frontier.search.storage import load_study
    from frontier.study.read import choose

    made = _made_tiny_study
    db, home = tmp_path / "s.db", tmp_path / "home"
    shutil.copy(made.db, db)
    shutil.copytree(made.home, home, symlinks=True)
    monkeypatch.setenv("FRONTIER_HOME", str(home))
    spec = small_spec(made.model, f"sqlite:///{db}", trials=TINY_STUDY_TRIALS)
    study = load_study(spec.study_name, spec.storage_url)
    chosen = choose(study)
    assert chosen is not None, "the tiny study chooses a point"
    return TinyStudy(spec, study, chosen)
