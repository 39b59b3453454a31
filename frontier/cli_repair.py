"""``frontier repair``: its arguments and handler (heavy imports stay inside the handler)."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CliTools:
    """What the command borrows from the CLI module (passed in: no import cycle)."""

    console: Callable[[], Any]
    open_study: Callable[[argparse.Namespace], Any]
    print_export: Callable[[Any], None]
    progress: Callable[[str], None]
    quiet: Callable[[], None]


def add_repair_parser(
    sub: Any, *, export_args: Callable[[argparse.ArgumentParser], None], tools: CliTools
) -> argparse.ArgumentParser:
    from frontier.repair._config import RepairConfig  # torch-free

    d = RepairConfig()
    p: argparse.ArgumentParser = sub.add_parser(
        "repair",
        help="distil a trial's pruned model towards the unpruned one, and export it",
        description="Train the MLP weights a trial keeps to match the unpruned model's "
        "logits (KL at a temperature, optional CE) on calibration text only; the held-out "
        "calibration slice stops it early, and a repair that does not improve it is rolled "
        "back. The result is exported like `frontier export`, with the repair recorded in "
        "compression.json.",
    )
    p.add_argument("study")
    p.add_argument("trial", type=int, nargs="?", default=None, help="default: the chosen point")
    p.add_argument("--out", required=True)
    p.add_argument("--storage", default=None)
    p.add_argument("--steps", type=int, default=d.steps, help=f"at most (default {d.steps})")
    p.add_argument("--batch-windows", type=int, default=d.batch_windows)
    p.add_argument("--seq-len", type=int, default=d.seq_len)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--ce-weight", type=float, default=d.ce_weight)
    p.add_argument("--heldout-tokens", type=int, default=d.heldout_tokens)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--patience", type=int, default=d.patience)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--cpu-minutes", type=float, default=None, help="stop after this CPU time")
    export_args(p)
    p.set_defaults(handler=functools.partial(cmd_repair, tools=tools))
    return p


def cmd_repair(args: argparse.Namespace, *, tools: CliTools) -> int:
    from pathlib import Path

    from frontier import settings
    from frontier.repair import RepairConfig, reporter_for
    from frontier.repair._study import repair_trial

    tools.quiet()
    settings.set_threads(args.threads)
    config = RepairConfig(
        steps=args.steps,
        batch_windows=args.batch_windows,
        seq_len=args.seq_len,
        lr=args.lr,
        temperature=args.temperature,
        ce_weight=args.ce_weight,
        heldout_tokens=args.heldout_tokens,
        eval_every=args.eval_every,
        patience=args.patience,
        seed=args.seed,
        cpu_minutes=args.cpu_minutes,
    )
    con = tools.console()
    done = repair_trial(
        tools.open_study(args),
        args.trial,
        Path(args.out),
        config,
        format=args.format,
        dtype=args.dtype,
        force=args.force,
        reporter=reporter_for(con),
        progress=tools.progress,
    )
    r = done.result
    con.print(
        f"trial {done.trial}: held-out ppl ratio {_ratio(done.before)} before repair, "
        f"{_ratio(done.after)} after ({r.steps_run} steps, {r.tokens_trained:,} tokens, "
        f"{r.cpu_seconds / 60:.1f} CPU-minutes)"
    )
    if r.rolled_back:
        con.print("the repair did not improve the held-out loss: the pruned weights were kept")
    tools.print_export(done.export)
    return 0


def _ratio(rec: dict[str, Any]) -> str:
    value = rec.get("ppl_ratio")
    return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"
