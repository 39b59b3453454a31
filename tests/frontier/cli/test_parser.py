"""The parser: every argument documented, booleans in --x/--no-x pairs, flags from the spec."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontier.cli import build_parser, main, spec_from_args
from frontier.cli.spec_flags import spec_flag
from frontier.study.spec import StudySpec, field_help

_NO_HELP_NEEDED = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def _commands(
    parser: argparse.ArgumentParser, path: str = "frontier"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command's parser, with its command line."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{path} {name}")


def _arguments() -> Iterator[tuple[str, argparse.Action]]:
    for path, parser in _commands(build_parser()):
        for action in parser._actions:
            if not isinstance(action, _NO_HELP_NEEDED):
                yield f"{path} {'/'.join(action.option_strings) or action.dest}", action


def test_the_walk_sees_every_command() -> None:
    paths = {path for path, _ in _commands(build_parser())}
    assert {"frontier find", "frontier models pull", "frontier data mirror"} <= paths
    assert len(paths) == 21  # 16 commands, 3 groups and the top level
    assert len(list(_arguments())) > 80


ARGUMENTS = [pytest.param(where, action, id=where) for where, action in _arguments()]


@pytest.mark.parametrize("where, action", ARGUMENTS)
def test_every_argument_has_help(where: str, action: argparse.Action) -> None:
    assert action.help and len(action.help.strip()) > 5, f"{where} has no help text"


@pytest.mark.parametrize("where, action", ARGUMENTS)
def test_every_boolean_flag_has_a_no_form(where: str, action: argparse.Action) -> None:
    one_way = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction)
    assert not isinstance(action, one_way), f"{where} is a one-way switch; use --x/--no-x"
    if isinstance(action, argparse.BooleanOptionalAction):
        positive, negative = action.option_strings
        assert negative == "--no-" + positive.removeprefix("--")


def test_every_spec_field_is_a_find_flag_with_the_fields_documentation() -> None:
    find = dict(_commands(build_parser()))["frontier find"]
    by_dest = {a.dest: a for a in find._actions}
    documented = [f.name for f in dataclasses.fields(StudySpec) if "help" in f.metadata]
    assert len(documented) == len(dataclasses.fields(StudySpec))
    for name in documented:
        action = by_dest[name]
        assert spec_flag(name) in action.option_strings
        assert action.help is not None
        assert action.help.replace("%%", "%").startswith(field_help(name))
        assert action.default is None  # a flag overrides a TOML spec only when given


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["find", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 16384)", "(default: smollm2-135m)", "(default: ppl<2.0)"):
        assert default in text
    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 0.75)" in text and "(default: 4096)" in text and "(default: False)" in text


def test_text_means_the_same_in_prune_and_find() -> None:
    commands = dict(_commands(build_parser()))
    helps = {
        name: {a.dest: a.help for a in commands[f"frontier {name}"]._actions}
        for name in ("prune", "find")
    }
    for dest in ("text", "calibration_text", "calibration_tokens", "criterion", "compensate"):
        assert helps["prune"][dest] is not None and helps["find"][dest] is not None
        assert helps["prune"][dest].startswith(field_help(dest).replace("%", "%%")), dest
        assert helps["find"][dest].startswith(field_help(dest).replace("%", "%%")), dest


def test_one_name_for_the_output_folder() -> None:
    flags = {f for _, a in _arguments() for f in a.option_strings}
    assert "--out" in flags
    assert not flags & {"--dest", "--report-dir", "--config", "--ignore-source"}


def test_flags_override_a_toml_spec_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        "compensate = true\nrefit = false\ntrust_remote_code = true\nwarm_start = false\n"
        "early_stop = false\n"
    )

    def spec(*flags: str) -> StudySpec:
        return spec_from_args(build_parser().parse_args(["find", "--spec", str(path), *flags]))

    assert spec().compensate and spec().trust_remote_code and not spec().warm_start
    assert not spec().refit and not spec().early_stop and spec("--early-stop").early_stop
    off = spec("--no-compensate", "--refit", "--no-trust-remote-code", "--warm-start")
    assert not off.compensate and not off.trust_remote_code and off.warm_start and off.refit
    assert spec("--check-text", "file:a.txt", "--check-text", "c").check_texts == (
        "file:a.txt",
        "c",
    )
    assert spec("--tasks", "arc_easy,hellaswag", "--tasks", "mmlu").tasks == (
        "arc_easy",
        "hellaswag",
        "mmlu",
    )
    assert spec("--min-keep", "30%").min_keep == pytest.approx(0.3)


def test_an_unknown_spec_key_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text("trails = 5\n")
    assert main(["find", "--spec", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "unknown key(s) trails" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, says",
    [
        (["find", "--trials", "0"], "must be positive"),
        (["find", "--min-keep", "1.5"], "must be in (0, 1]"),
        (["find", "--sampler", "grid"], "invalid choice"),
        (["export"], "the following arguments are required"),
        (["apply", "x", "--config", "y", "--model", "m", "--out", "o"], "unrecognized"),
        (["find", "--report-dir", "x"], "unrecognized"),
    ],
)
def test_bad_usage_exits_2(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_python_m_frontier_cli_runs() -> None:
    repo = Path(__file__).resolve().parents[3]
    p = subprocess.run(
        [sys.executable, "-m", "frontier.cli", "apply", "--help"],
        capture_output=True,
        text=True,
        cwd=repo,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "usage: frontier apply [-h]" in p.stdout and "EXPORT" in p.stdout


def test_every_command_that_loads_a_model_takes_a_device() -> None:
    parser = build_parser()
    study_based = {
        "export": ["export", "s", "--out", "o"],
        "verify": ["verify", "s", "o"],
        "repair": ["repair", "s", "--out", "o"],
        "worker": ["worker", "s", "--storage", "journal:x"],
    }
    for argv in study_based.values():
        assert parser.parse_args(argv).device is None  # the study's
        assert parser.parse_args([*argv, "--device", "cuda:1"]).device == "cuda:1"
    assert parser.parse_args(["worker", "s", "--storage", "x", "--dtype", "bf16"]).dtype == "bf16"
    apply = parser.parse_args(["apply", "e", "--model", "m", "--out", "o"])
    assert apply.device == "cpu" and apply.dtype is None  # --dtype: the saved weights'
    prune = parser.parse_args(["prune", "--device", "cuda", "--dtype", "bf16"])
    assert (prune.device, prune.dtype) == ("cuda", "bf16")
    assert parser.parse_args(["prune"]).device == "auto"
    find = parser.parse_args(["find", "--devices", "cuda:0,cuda:1"])
    assert find.devices == "cuda:0,cuda:1" and find.device is None
    with pytest.raises(SystemExit):
        parser.parse_args(["find", "--dtype", "int8"])


def test_a_bad_device_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["find", "--device", "gpu0"], ["find", "--devices", "cuda:0,cpu"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "device" in err[0] and "Traceback" not in err[0]


def test_building_the_parser_imports_no_torch() -> None:
    """`frontier --help` and every flag's choices (the export formats' registry among
    them) stay fast: torch and transformers load only with a command that needs them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from frontier.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_families_are_comma_separated_or_repeated_and_unknown_ones_refused() -> None:
    from frontier.errors import FrontierError
    from frontier.search.context import build_context

    args = build_parser().parse_args(
        ["find", "--family", "removal,protect", "--family", "depth-rising"]
    )
    spec = spec_from_args(args)
    assert spec.families == ("removal", "protect", "depth-rising")
    with pytest.raises(FrontierError, match="unknown allocation family 'nope'"):
        build_context(spec.replace(families=("nope",), device="cpu"))


def test_family_none_turns_the_default_family_off() -> None:
    assert spec_from_args(build_parser().parse_args(["find"])).families == ("protect",)
    off = spec_from_args(build_parser().parse_args(["find", "--family", "none"]))
    assert off.families == ()
