"""The ``frontier`` command: parse arguments, build typed values, call the library.

Every command here is a thin layer over a library function of the same name; errors a
user can fix are one line on stderr and a non-zero exit (``--debug`` shows tracebacks).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from frontier import __version__
from frontier.errors import FrontierError

Handler = Callable[[argparse.Namespace], int]


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore", module="transformers")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def _progress(msg: str) -> None:
    print(f"… {msg}", file=sys.stderr, flush=True)


# -- models -------------------------------------------------------------------------
def cmd_models_list(_args: argparse.Namespace) -> int:
    from rich.table import Table

    from frontier.models._aliases import ALIASES, DEFAULT_ALIAS

    table = Table(title="built-in models (from PyPI)")
    for col in ("alias", "model", "license", "cached"):
        table.add_column(col)
    for a in ALIASES.values():
        name = a.name + (" (default)" if a.name == DEFAULT_ALIAS else "")
        table.add_row(name, a.description, a.license, str(a.cache_dir) if a.is_cached else "no")
    _console().print(table)
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from frontier.models._aliases import pull

    _quiet_libraries()
    print(pull(args.name, progress=_progress))
    return 0


# -- prune (one uniform plan) ---------------------------------------------------------
def cmd_prune(args: argparse.Namespace) -> int:
    from frontier import settings
    from frontier.models import load_model
    from frontier.prune import CalibrationSpec, prune_once

    _quiet_libraries()
    settings.set_threads(args.threads)
    lm = load_model(args.model, trust_remote_code=args.trust_remote_code, progress=_progress)
    _progress(f"scoring {lm.name} with '{args.criterion}' and pruning to keep {args.keep:.0%}")
    r = prune_once(
        lm,
        args.keep,
        criterion=args.criterion,
        calibration=CalibrationSpec(text=args.text, n_tokens=args.calibration_tokens),
        eval_tokens=args.eval_tokens,
        compensate=args.compensate,
    )
    ev = r.protocol["evaluation"]
    con = _console()
    con.print(f"[bold]{lm.name}[/]: {r.plan.describe()}, criterion {r.criterion}")
    con.print(
        f"  parameters   {r.params_before:,} -> {r.params_after:,} "
        f"({100 * (1 - r.params_after / r.params_before):.1f}% removed)"
    )
    con.print(f"  perplexity   {r.ppl_before:.3f} -> {r.ppl_after:.3f}  (ratio {r.ppl_ratio:.3f})")
    con.print(
        f"  protocol     {ev['source']}, {ev['role']} articles, {ev['tokens']} tokens in "
        f"{ev['windows']} windows of {ev['seq_len']}"
    )
    con.print("  seconds      " + ", ".join(f"{k} {v:.1f}" for k, v in r.seconds.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="frontier",
        description="Find how far a language model's MLPs can be pruned before it breaks.",
    )
    p.add_argument("--version", action="version", version=f"frontier {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = sub.add_parser("models", help="built-in model aliases").add_subparsers(
        dest="models_command", required=True, metavar="ACTION"
    )
    models.add_parser("list", help="list aliases and whether each is cached").set_defaults(
        handler=cmd_models_list
    )
    pull = models.add_parser("pull", help="fetch, check and convert an alias into the cache")
    pull.add_argument("name")
    pull.set_defaults(handler=cmd_models_pull)

    prune = sub.add_parser("prune", help="prune every layer to one keep ratio and measure it")
    _model_args(prune)
    prune.add_argument("--keep", type=_fraction, default=0.75, help="fraction of neurons kept")
    prune.add_argument(
        "--criterion",
        default="activation",
        help="importance criterion: activation, fluctuation, magnitude, random",
    )
    prune.add_argument(
        "--compensate",
        action="store_true",
        help="fold dropped neurons' mean output into the down bias (FLAP)",
    )
    prune.add_argument(
        "--text",
        default="wiki-sample",
        help="text source: wiki-sample, file:PATH or hf:NAME[:CONFIG]",
    )
    prune.add_argument("--calibration-tokens", type=_positive_int, default=16384)
    prune.add_argument("--eval-tokens", type=_positive_int, default=4096)
    prune.set_defaults(handler=cmd_prune)
    return p


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="smollm2-135m",
        help="alias, local folder, .gguf file or hub id (default: smollm2-135m)",
    )
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model's own code to run (off by default)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch CPU threads (default: $FRONTIER_THREADS or torch's choice)",
    )


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] or (0%, 100%], got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except FrontierError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
