"""Operator benchmark: every criterion with and without the refit, at uniform keep ratios.

    python benchmarks/operator.py [--model smollm2-135m] [--keeps 0.8,0.7,0.6,0.5]
                                  [--criteria obs,obs-greedy] [--refit-only]

Protocol (the project's held-out one): calibration on 16,384 tokens of the Wikipedia
sample's calibration part (512-token windows; the last eighth held out for choosing the
ridge strength); perplexity on 8,192 tokens of its report part in 1,024-token windows,
as a ratio to the unpruned model's. Also prints the seconds of apply + refit + restore
of random per-layer plans (keep 0.3-1.0) against one 2,048-token evaluation, side by
side in one process.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch

from frontier import settings
from frontier.data.text import TextSource, token_windows
from frontier.importance import CRITERIA, compute_scores
from frontier.models import load_model
from frontier.pruning.operator import PruningOperator, cached_alphas
from frontier.pruning.plan import Plan
from objectives._lm import mean_nll


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--keeps", default="0.8,0.7,0.6,0.5")
    ap.add_argument("--criteria", default=",".join(sorted(CRITERIA)))
    ap.add_argument("--calibration-tokens", type=int, default=16384)
    ap.add_argument("--eval-tokens", type=int, default=8192)
    ap.add_argument("--text", default="wiki-sample")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--timing-criterion", default="energy", help="time apply+restore with it")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--refit-only", action="store_true", help="skip the rows without refit")
    args = ap.parse_args()
    settings.set_threads(args.threads)
    keeps = [float(k) for k in args.keeps.split(",")]
    lm = load_model(args.model)
    src = TextSource(args.text)
    cal = token_windows(
        src, "calibration", lm.tokenizer, n_tokens=args.calibration_tokens, seq_len=512
    )
    ev = token_windows(src, "report", lm.tokenizer, n_tokens=args.eval_tokens, seq_len=1024)
    base = mean_nll(lm.model, ev.ids)
    t = time.perf_counter()
    first = compute_scores(lm, "energy", cal, grams=True)
    calib_s = time.perf_counter() - t
    assert first.grams is not None
    t = time.perf_counter()
    alphas = cached_alphas(lm, first)  # chosen on the held-out calibration windows
    alpha_s = time.perf_counter() - t
    print(
        f"model {lm.name}; calibration {cal.n_tokens} tokens ({calib_s:.1f} s, cached: "
        f"{first.from_cache}); alpha chosen in {alpha_s:.1f} s: {alphas}",
        flush=True,
    )
    table: dict[str, dict[str, float]] = {}
    timing: dict[str, float] = {}
    for criterion in args.criteria.split(","):
        scores = compute_scores(lm, criterion, cal, grams=True)
        for refit in (True,) if args.refit_only else (False, True):
            t = time.perf_counter()
            op = PruningOperator(lm.model, scores, refit=refit, alphas=alphas)
            setup = time.perf_counter() - t
            row = table.setdefault(op.name, {})
            for keep in keeps:
                with op.pruned(Plan.uniform(keep, op.full)):
                    row[f"{keep:.2f}"] = math.exp(mean_nll(lm.model, ev.ids) - base)
            print(
                f"{op.name:24s} "
                + "  ".join(f"{row[f'{k:.2f}']:8.3f}" for k in keeps)
                + f"   (set-up {setup:.1f} s)",
                flush=True,
            )
            if criterion == args.timing_criterion:
                measured = _timing(lm, op, src, args.repeats, prefix=op.name)
                timing.update(measured)
                for key, value in measured.items():
                    print(f"{key:40s} {value:8.3f}", flush=True)
    print("\nkeep                     " + "  ".join(f"{k:8.2f}" for k in keeps))
    for name, row in table.items():
        print(f"{name:24s} " + "  ".join(f"{row[f'{k:.2f}']:8.3f}" for k in keeps))
    for key, value in timing.items():
        print(f"{key:40s} {value:8.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "model": lm.name,
                    "keeps": keeps,
                    "ppl_ratio": table,
                    "timing": timing,
                    "alpha": alphas,
                    "threads": torch.get_num_threads(),
                },
                f,
                indent=1,
            )


def _timing(
    lm: object, op: PruningOperator, src: TextSource, repeats: int, *, prefix: str
) -> dict[str, float]:
    """Median seconds of apply (+ refit) + restore of random plans, and of one evaluation."""
    model = lm.model  # type: ignore[attr-defined]
    ev = token_windows(src, "search", lm.tokenizer, n_tokens=2048, seq_len=1024)  # type: ignore[attr-defined]
    gen = torch.Generator().manual_seed(0)
    apply_s, eval_s = [], []
    for _ in range(repeats):
        ratios = (0.3 + 0.7 * torch.rand(len(op.full), generator=gen)).tolist()
        plan = Plan.from_ratios(ratios, op.full)
        t = time.perf_counter()
        op.apply(plan)
        op.restore()
        apply_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        mean_nll(model, ev.ids)
        eval_s.append(time.perf_counter() - t)
    a, e = statistics.median(apply_s), statistics.median(eval_s)
    return {
        f"{prefix}: apply+restore s": a,
        f"{prefix}: 2,048-token eval s": e,
        f"{prefix}: ratio %": 100 * a / e,
    }


if __name__ == "__main__":
    main()
