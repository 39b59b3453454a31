"""Engine benchmark: calibration, apply+restore, and one perplexity evaluation, side by side.

    python benchmarks/engine.py [--model smollm2-135m] [--threads N]

Target: apply+restore under 5% of one 2,048-token perplexity evaluation.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from frontier import settings
from frontier.data.text import TextSource, token_windows
from frontier.importance import compute_scores
from frontier.models import load_model
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from objectives._lm import mean_nll


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--calibration-tokens", type=int, default=16384)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    settings.set_threads(args.threads)
    lm = load_model(args.model)
    src = TextSource()
    cal = token_windows(
        src, "calibration", lm.tokenizer, n_tokens=args.calibration_tokens, seq_len=512
    )
    t = time.perf_counter()
    scores = compute_scores(lm, "activation", cal, use_cache=False)
    calib_s = time.perf_counter() - t
    ev = token_windows(src, "search", lm.tokenizer, n_tokens=2048, seq_len=1024)
    pruner = Pruner(lm.model, scores.per_layer, mean_activation=scores.mean_activation)
    gen = torch.Generator().manual_seed(0)
    apply_s, eval_s = [], []
    for _ in range(args.repeats):
        ratios = (0.3 + 0.7 * torch.rand(len(pruner.full), generator=gen)).tolist()
        plan = Plan.from_ratios(ratios, pruner.full)
        t = time.perf_counter()
        pruner.apply(plan)
        pruner.restore()
        apply_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        mean_nll(lm.model, ev.ids)
        eval_s.append(time.perf_counter() - t)
    a, e = statistics.median(apply_s), statistics.median(eval_s)
    print(f"model                      {lm.name} ({torch.get_num_threads()} threads, fp32, CPU)")
    print(
        f"calibration                {calib_s:8.2f} s  ({cal.n_tokens} tokens, "
        f"{cal.ids.shape[0]} x {cal.seq_len}, activation statistics)"
    )
    print(f"apply+restore (median)     {a:8.3f} s  (random per-layer plans, keep 0.3-1.0)")
    print(f"perplexity eval (median)   {e:8.3f} s  (2,048 tokens, 2 windows of 1,024)")
    print(f"apply+restore / eval       {100 * a / e:8.2f} %  (target < 5%)")


if __name__ == "__main__":
    main()
