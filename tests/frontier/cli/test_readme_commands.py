"""The README's commands run as written, in order, on a tiny model.

Every ``frontier`` line of the README's bash blocks is run through the CLI, with the
built-in model's name read as a tiny local model (and its study), a trial number the
tiny study has, and the study's size cut down (SMALL_STUDY_FLAGS, a few trials): the
tour (find, pareto, show, export, verify) must exit as the README says it does.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from frontier.cli import main
from frontier.testing import SMALL_STUDY_FLAGS

README = Path(__file__).resolve().parents[3] / "README.md"
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
MODEL = "smollm2-135m"  # the README's model; its study is named after it


def readme_commands() -> list[list[str]]:
    """The argument lists of every ``frontier`` command in the README's bash blocks."""
    out: list[list[str]] = []
    for block in BASH_BLOCK.findall(README.read_text(encoding="utf-8")):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0].removeprefix(".venv/bin/") == "frontier":
                out.append(words[1:])
    return out


def test_the_readme_shows_the_tour() -> None:
    verbs = [c[0] for c in readme_commands()]
    for verb in ("find", "pareto", "show", "export", "verify"):
        assert verb in verbs, f"the README shows no `frontier {verb}`"


@pytest.mark.slow
def test_the_readme_commands_run_on_a_tiny_model(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # studies/ and the export folders land here
    study = tiny_folder.name
    commands = readme_commands()
    # `make demo` runs the study before the quick start's exports: the finds go first
    commands.sort(key=lambda c: c[0] != "find")
    for args in commands:
        args = [
            str(tiny_folder) if a == MODEL and i and args[i - 1] == "--model" else a
            for i, a in enumerate(args)
        ]
        args = [study if a == MODEL else a for a in args]
        if args[0] == "find":
            args += [*SMALL_STUDY_FLAGS, "--trials", "6"]
        code = main(args)
        assert code == 0, f"`frontier {shlex.join(args)}` exited {code}"
    assert (tmp_path / "smol-3" / "compression.json").is_file()
