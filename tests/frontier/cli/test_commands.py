"""The commands: export and show default to the chosen trial, apply and verify take the
export as a positional, and errors are one line with a non-zero exit status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from frontier.cli import main
from frontier.search.storage import load_study
from frontier.study.read import choose, nearest_trial
from frontier.testing import SMALL_STUDY_FLAGS, tiny_model, tiny_tokenizer


@dataclass(frozen=True)
class Studies:
    root: Path
    model: Path
    url: str  # "ok" has a chosen trial, "none" (params<=20%) has none
    chosen: int
    nearest: int


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studies]:
    root = tmp_path_factory.mktemp("commands")
    model = root / "tiny-llama"
    tiny_model("llama").save_pretrained(model)
    tiny_tokenizer().save_pretrained(model)
    url = f"sqlite:///{root / 's.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRONTIER_HOME", str(root / "home"))
        mp.setenv("FRONTIER_THREADS", "1")
        mp.chdir(root)
        common = ["--model", str(model), *SMALL_STUDY_FLAGS, "--storage", url, "--no-report"]
        ok = ["find", *common, "--study", "ok", "--slo", "ppl<1.5", "--trials", "6"]
        assert main(ok) == 0
        none = ["find", *common, "--study", "none", "--slo", "params<=20%", "--trials", "3"]
        assert main(none) == 3
        chosen, nearest = choose(load_study("ok", url)), nearest_trial(load_study("none", url))
        assert chosen is not None and nearest is not None
        yield Studies(root, model, url, chosen.number, nearest.number)


@pytest.fixture
def home(studies: Studies, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(studies.root / "home"))
    monkeypatch.setenv("FRONTIER_THREADS", "1")


def test_show_defaults_to_the_chosen_trial(
    studies: Studies, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", "ok", "--storage", studies.url]) == 0
    assert f"trial {studies.chosen} (complete, chosen" in capsys.readouterr().out


def test_export_defaults_to_the_chosen_trial_and_apply_and_verify_take_it(
    studies: Studies, home: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, again = tmp_path / "export", tmp_path / "again"
    assert main(["export", "ok", "--storage", studies.url, "--out", str(out)]) == 0
    assert json.loads((out / "compression.json").read_text())["trial"] == studies.chosen
    # apply takes the export folder (or its compression.json) as its positional
    assert main(["apply", str(out), "--model", str(studies.model), "--out", str(again)]) == 0
    a, b = load_file(str(out / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # verify: the study, then the export
    capsys.readouterr()
    assert main(["verify", "ok", str(out), "--storage", studies.url]) == 0
    assert "equal" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["show", "export"])
def test_without_a_chosen_trial_the_error_names_the_nearest(
    command: str, studies: Studies, home: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, "none", "--storage", studies.url]
    assert main([*argv, "--out", str(tmp_path / "x")] if command == "export" else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: study 'none' has no chosen trial")
    assert f"the nearest is trial {studies.nearest}" in err and "pass a trial number" in err
    assert not (tmp_path / "x").exists()
    # the number the message names works
    assert main(["show", "none", str(studies.nearest), "--storage", studies.url]) == 0


def test_an_unexpected_error_is_one_line_and_debug_shows_it(
    studies: Studies, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import frontier.study.read as results

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(results, "pareto", broken)
    assert main(["pareto", "ok", "--storage", studies.url]) == 1
    err = capsys.readouterr().err
    assert err == "error: RuntimeError: boom (unexpected; --debug shows the traceback)\n"
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "pareto", "ok", "--storage", studies.url])


def test_a_missing_study_is_one_line(studies: Studies, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["show", "nosuch"], ["pareto", "nosuch"], ["report", "nosuch"]):
        assert main([*argv, "--storage", studies.url]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: no study 'nosuch'") and err.count("\n") == 1
