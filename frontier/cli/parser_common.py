"""The building blocks of a subcommand's parser: the subparser itself (or a group of
them), the study and trial arguments, ``--out`` and ``--force``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from frontier.cli.spec_flags import Formatter, add_spec_argument

_STUDY_HELP = "the study's name (see frontier find --study)"


def _command(
    sub: Any,
    name: str,
    help: str,
    handler: Callable[[argparse.Namespace], int] | None,
    *,
    loads_models: bool = False,
) -> argparse.ArgumentParser:
    """A subcommand; ``loads_models``: it imports torch and transformers (quiet them)."""
    cmd: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=help, formatter_class=Formatter
    )
    cmd.set_defaults(handler=handler, loads_models=loads_models)
    return cmd


def _group(sub: Any, name: str, help: str) -> Any:
    group = sub.add_parser(name, help=help, description=help, formatter_class=Formatter)
    return group.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def _study(p: argparse.ArgumentParser, *, trial: bool = False) -> None:
    p.add_argument("study", help=_STUDY_HELP)
    if trial:
        p.add_argument(
            "trial",
            type=int,
            nargs="?",
            default=None,
            help="the trial's number (default: the study's chosen trial)",
        )
    add_spec_argument(p, "storage")


def _out(p: argparse.ArgumentParser, help: str, *, required: bool = False) -> None:
    p.add_argument("--out", required=required, default=None, metavar="DIR", help=help)


def _force(p: argparse.ArgumentParser, what: str = "a non-empty --out folder") -> None:
    p.add_argument(
        "--force", action=argparse.BooleanOptionalAction, default=False, help=f"overwrite {what}"
    )
