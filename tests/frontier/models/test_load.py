from __future__ import annotations

from pathlib import Path

import pytest

from frontier.errors import FrontierError
from frontier.models import load_model
from frontier.models._aliases import ALIASES
from frontier.testing import tiny_model, tiny_tokenizer


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))


def _save(tmp_path: Path, model_type: str) -> Path:
    folder = tmp_path / model_type
    tiny_model(model_type).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def test_local_folder_loads_and_fingerprint_is_path_independent(tmp_path: Path) -> None:
    a = load_model(str(_save(tmp_path, "llama")))
    folder_b = tmp_path / "copy"
    a.model.save_pretrained(folder_b)
    tiny_tokenizer().save_pretrained(folder_b)
    b = load_model(str(folder_b))
    assert a.fingerprint == b.fingerprint
    assert a.adapter.model_type == "llama"
    assert a.tokenizer.pad_token is not None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no/such-model-xyz", "cannot load hub model"),
        ("definitely not a model", "is not a model"),
        ("__file__", "not a model"),
        ("__empty_dir__", "has no config.json"),
    ],
)
def test_bad_model_specs(
    spec: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if spec == "__file__":
        spec = str(tmp_path / "x.txt")
        Path(spec).write_text("hello")
    elif spec == "__empty_dir__":
        spec = str(tmp_path / "empty")
        Path(spec).mkdir()
    with pytest.raises(FrontierError, match=message) as err:
        load_model(spec)
    assert "\n" not in str(err.value)


def test_unsupported_architecture_is_refused_before_loading_weights(tmp_path: Path) -> None:
    from transformers import MixtralConfig

    folder = tmp_path / "moe"
    folder.mkdir()
    MixtralConfig(num_local_experts=4).save_pretrained(folder)  # no weights at all
    with pytest.raises(FrontierError, match="unsupported architecture 'mixtral'"):
        load_model(str(folder))


def test_aliases_are_pinned_and_checksummed() -> None:
    assert {"smollm2-135m", "gemma3-270m"} <= set(ALIASES)
    for alias in ALIASES.values():
        assert len(alias.sha256) == 64
        assert all("==" in p.requirement for p in alias.parts)
