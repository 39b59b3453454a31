"""The parsers of the commands that write or check a checkpoint: ``export``, ``apply``,
``verify`` and ``repair``, and the checkpoint options they share."""

from __future__ import annotations

import argparse
from typing import Any

from frontier.cli import commands
from frontier.cli.parser_common import _STUDY_HELP, _command, _force, _out, _study
from frontier.cli.spec_flags import add_spec_argument
from frontier.export.formats import FORMATS, formats_help

_FORMATS = tuple(FORMATS)
_FORMAT_HELP = formats_help()


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
    _local_options(repair)
    _export_options(repair)


def _local_options(repair: Any) -> None:
    from frontier.reconstruct import INPUTS, TARGETS, ReconstructConfig  # torch-free

    d = ReconstructConfig()
    how = repair.add_mutually_exclusive_group()
    how.add_argument(
        "--local",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="a cheaper repair: reconstruct each pruned MLP locally (gate, up and down "
        "fitted to the unpruned MLP's output, layer by layer) instead of distilling the "
        "whole model; apply rebuilds the export bit for bit",
    )
    how.add_argument(
        "--local-then-global",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="reconstruct each pruned MLP locally, then distil the whole model from there",
    )
    repair.add_argument(
        "--local-steps", type=int, default=d.steps, help="local: Adam steps per layer at most"
    )
    repair.add_argument("--local-lr", type=float, default=d.lr, help="local: Adam learning rate")
    repair.add_argument(
        "--local-inputs",
        choices=INPUTS,
        default=d.inputs,
        help="local: each layer's inputs from the pruned model as reconstructed so far, "
        "or from the unpruned model",
    )
    repair.add_argument(
        "--local-target",
        choices=TARGETS,
        default=d.target,
        help="local: fit each MLP to the unpruned MLP's output on its inputs (mlp), or to "
        "the output that puts its layer's output back on the unpruned model's (stream: "
        "also makes up for the layers before; pruned inputs only)",
    )
    repair.add_argument(
        "--local-cpu-minutes",
        type=float,
        default=None,
        help="local: process CPU time for all layers together",
    )
