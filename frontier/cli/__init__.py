"""The ``frontier`` command.

``parser`` builds the argument parser (``spec_flags`` makes the study flags from
:class:`~frontier.study.spec.StudySpec`'s fields and their documentation,
``parser_common`` holds a subcommand's building blocks, ``parser_export`` the parsers of
the commands that write or check a checkpoint), ``commands`` turns parsed arguments into
typed values and calls the library function of the same name, ``render`` prints the
results (``render_trial``: ``frontier show``'s trial), and ``preamble`` is what every
command shares: quiet libraries, one-line warnings, and errors as one line and a non-zero
exit status.
"""

from __future__ import annotations

from collections.abc import Sequence

from frontier.cli.parser import build_parser, spec_from_args
from frontier.cli.preamble import run

__all__ = ["build_parser", "main", "spec_from_args"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``frontier ARGS``; return the exit status (bad usage exits 2 from argparse)."""
    return run(build_parser().parse_args(argv))
