"""Command-line flags made from :class:`~frontier.study.spec.StudySpec`'s fields.

A field's flag is its name with dashes (``calibration_tokens`` -> ``--calibration-tokens``,
or the field's ``flag``), its help text the field's documentation, its kind the field's
type: booleans are ``--x/--no-x`` pairs, tuples repeat, Literals are choices. So a flag
and a TOML spec key always mean the same thing.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from frontier.study.spec import StudySpec, field_help

SPEC_FIELDS = {f.name: f for f in dataclasses.fields(StudySpec) if "help" in f.metadata}


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after an argument's help, unless X is None."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


# -- argument types ---------------------------------------------------------------------
def fraction(text: str) -> float:
    """A number in (0, 1], or a percentage in (0%, 100%]."""
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] or (0%, 100%], got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


# -- flags from the spec ----------------------------------------------------------------
def _spec_kind(name: str) -> dict[str, Any]:
    """argparse keywords for spec field ``name``, from its type."""
    hint = typing.get_type_hints(StudySpec)[name]
    if get_origin(hint) in (typing.Union, types.UnionType):
        hint = get_args(hint)[0]  # int | None, int | dict[str, int]: the CLI takes the int
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if get_origin(hint) is tuple:
        meta = SPEC_FIELDS[name].metadata.get("metavar", name.removesuffix("s").upper())
        return {"action": "append", "metavar": meta}
    if get_origin(hint) is Literal:
        return {"choices": get_args(hint)}
    if hint is int:
        return {"type": int if name == "seed" else positive_int, "metavar": "N"}
    if hint is float:
        if name in ("timeout", "memory"):
            return {"type": positive_float, "metavar": "GIB" if name == "memory" else "X"}
        return {"type": fraction, "metavar": "X"}
    return {"metavar": name.split("_")[-1].upper()}


def spec_flag(name: str) -> str:
    return str(SPEC_FIELDS[name].metadata.get("flag", "--" + name.replace("_", "-")))


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(value) or "none"
    return str(value)


def add_spec_argument(
    p: argparse.ArgumentParser,
    name: str,
    *,
    default: Any = dataclasses.MISSING,
    help: str | None = None,
    required: bool = False,
) -> None:
    """Add spec field ``name``'s flag. Without ``default`` the flag defaults to None (it
    then overrides a TOML spec only when given) and its help shows the spec's default."""
    f = SPEC_FIELDS[name]
    text = (help or field_help(name)).replace("%", "%%")
    if default is dataclasses.MISSING:
        default = None
        if f.default is not None and "default:" not in text:
            text += f" (default: {_shown(f.default)})".replace("%", "%%")
    p.add_argument(
        spec_flag(name),
        dest=name,
        default=default,
        help=text,
        required=required,
        **_spec_kind(name),
    )


def spec_from_args(args: argparse.Namespace) -> StudySpec:
    """The spec of ``frontier find``: the ``--spec`` file (if any), overridden by flags."""
    given = {n: getattr(args, n) for n in SPEC_FIELDS if getattr(args, n, None) is not None}
    for name in ("tasks", "families"):
        if name in given:
            given[name] = [t.strip() for t in ",".join(given[name]).split(",") if t.strip()]
    if args.spec:
        return StudySpec.from_toml(Path(args.spec), **given)
    return StudySpec.from_dict(given, where="arguments")
