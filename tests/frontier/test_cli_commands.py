"""The CLI commands not run elsewhere: prune, fit, compare, models, data mirror; argparse's
exit status. Each on a tiny model, checked for what it prints and the status it returns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from frontier.cli import main
from frontier.search.find import find
from frontier.testing import HIDDEN, LAYERS, WIDTH, small_spec, tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "tiny-llama"
    tiny_model("llama").save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def _text(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    out, err = capsys.readouterr()
    return " ".join(out.split()), err


# -- argparse ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["nonsense"], "invalid choice: 'nonsense'"),
        (["prune", "--keep", "1.5"], "must be in (0, 1]"),
        (["prune", "--keep", "half"], "not a number: 'half'"),
        (["prune", "--eval-tokens", "0"], "--eval-tokens"),
        (["models", "pull"], "the following arguments are required: name"),
        (["compare", "a"], "the following arguments are required: --out"),
    ],
)
def test_bad_arguments_exit_with_status_2_and_a_usage_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: frontier") and message in err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["--version"], ["prune", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "frontier " in out and "--keep" in out


# -- prune -------------------------------------------------------------------------------
def test_prune_prints_the_sizes_and_perplexities(
    tiny_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["prune", "--model", str(tiny_folder), "--keep", "0.5"]
    code = main([*argv, "--calibration-tokens", "512", "--eval-tokens", "1024"])
    out, err = _text(capsys)
    assert code == 0, err
    m = re.search(r"parameters ([\d,]+) -> ([\d,]+) \(([\d.]+)% removed\)", out)
    assert m, out
    before, after = (int(g.replace(",", "")) for g in m.group(1, 2))
    # half of every layer's gate, up and down: 3 matrices of HIDDEN x WIDTH/2
    assert before - after == LAYERS * 3 * HIDDEN * WIDTH // 2
    assert float(m.group(3)) == pytest.approx(100 * (before - after) / before, abs=0.05)
    p = re.search(r"perplexity ([\d.]+) -> ([\d.]+) \(ratio ([\d.]+)\)", out)
    assert p, out
    ppl0, ppl1, ratio = (float(g) for g in p.groups())
    assert ratio == pytest.approx(ppl1 / ppl0, abs=2e-3) and ratio != 1.0
    assert "report articles, 1024 tokens" in out


def test_prune_with_an_unknown_criterion_is_a_one_line_error(
    tiny_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["prune", "--model", str(tiny_folder), "--criterion", "vibes"])
    _, err = _text(capsys)
    assert code == 2
    last = err.splitlines()[-1]  # after the progress lines
    assert last.startswith("error: unknown importance criterion 'vibes'; known: activation")
    assert "Traceback" not in err


def test_prune_under_a_memory_budget_it_cannot_fit_is_a_one_line_error(
    tiny_folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--memory below what even the lean path needs stops before the calibration pass;
    a budget that fits runs (the tiny model's path: in memory)."""
    from frontier import settings

    monkeypatch.setattr(settings, "_memory_budget", None)  # the flag sets a process global
    argv = ["prune", "--model", str(tiny_folder), "--calibration-tokens", "512"]
    code = main([*argv, "--memory", "0.05"])
    _, err = _text(capsys)
    assert code == 2 and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("error: tiny-llama needs about 0.4 GiB of host memory even with")
    assert "the budget is 0.05 GiB" in last and "calibration pass" not in err
    code = main([*argv, "--memory", "4", "--eval-tokens", "1024"])
    settings.set_memory_budget(None)
    assert code == 0, _text(capsys)[1]


def test_prune_without_the_disk_for_its_statistics_is_a_one_line_error(
    tiny_folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calibration's files are checked against the cache disk's free space first."""
    import shutil

    from frontier import budget

    full = shutil._ntuple_diskusage(2**40, 2**40 - 2**20, 2**20)  # type: ignore[attr-defined]
    monkeypatch.setattr(budget.shutil, "disk_usage", lambda _p: full)
    code = main(["prune", "--model", str(tiny_folder), "--calibration-tokens", "512"])
    _, err = _text(capsys)
    assert code == 2 and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("error: its calibration statistics need about")
    assert "FRONTIER_HOME" in last


# -- fit and compare on one small study --------------------------------------------------
def test_fit_and_compare_read_a_finished_study(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    find(small_spec(tiny_folder, url, trials=10, slos=("ppl<1.05",)))
    capsys.readouterr()

    assert main(["fit", "s", "--storage", url, "--all"]) == 0
    out, _ = _text(capsys)
    assert "fits vs mlp removed" in out
    assert "ppl<1.05" in out  # the SLO solved on the fits (a limit or a reason)
    assert main(["fit", "s", "--storage", url, "--x", "params"]) == 0
    out, _ = _text(capsys)
    assert "fits vs params removed" in out

    dest = tmp_path / "cmp"
    assert main(["compare", "s", "--storage", url, "--out", str(dest)]) == 0
    assert (dest / "compare.md").is_file() and (dest / "compare.png").stat().st_size > 0
    assert "s" in (dest / "compare.md").read_text()

    assert main(["fit", "nope", "--storage", url]) == 2
    _, err = _text(capsys)
    assert "nope" in err and err.count("\n") == 1


# -- models and data ---------------------------------------------------------------------
def test_models_list_names_every_alias_and_the_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from frontier.models._aliases import ALIASES, DEFAULT_ALIAS

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("│ ") and "│" in line[2:]]
    first_cells = [row.split("│")[1].strip() for row in rows]
    for name in ALIASES:
        assert any(c.split()[0] == name for c in first_cells if c), name
    # the default is marked next to its name (or on the next line, where the table wraps)
    i = next(i for i, c in enumerate(first_cells) if c.startswith(DEFAULT_ALIAS))
    assert "(default)" in " ".join(first_cells[i : i + 2])
    assert sum("(default)" in c for c in first_cells) == 1


def test_models_pull_of_an_unknown_alias_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models", "pull", "gpt-17"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown alias 'gpt-17'") and err.count("\n") == 1


def test_data_mirror_builds_and_lists_a_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "lmeval"
    assert main(["data", "mirror", "--out", str(dest), "--tasks", "arc_easy"]) == 0
    out, _ = _text(capsys)
    assert f"benchmark mirror at {dest}" in out and "arc_easy" in out
    assert (dest / "manifest.json").is_file()
    assert main(["data", "mirror", "--out", str(dest), "--tasks", "nonsense"]) == 2
    _, err = _text(capsys)
    assert "nonsense" in err and err.count("\n") == 1


def test_compare_reads_written_summaries_where_no_database_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A committed study's results folder (or its summary.json) stands for the study; a
    file that is not a summary is a one-line error."""
    import shutil

    root = Path(__file__).resolve().parents[2] / "studies/results"
    a, b = root / "smollm2-135m", root / "gemma3-270m"
    dest = tmp_path / "cmp"
    assert main(["compare", str(a), str(b / "summary.json"), "--out", str(dest)]) == 0
    text = (dest / "compare.md").read_text()
    assert "| smollm2-135m | smollm2-135m |" in text and "| gemma3-270m | gemma3-270m |" in text
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(a / "report.md", bad / "summary.json")
    capsys.readouterr()
    assert main(["compare", str(bad), "--out", str(dest)]) == 2
    _, err = _text(capsys)
    assert "cannot read the study summary" in err and err.count("\n") == 1
