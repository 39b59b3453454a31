"""Is a gap between search-time and held-out ratios the text, or the window length?

    python benchmarks/window_probe.py [--model gemma3-270m] [--keeps 0.5,0.6]

Uniform plans (every layer keeps ``keep`` of its neurons, rounded to multiples of 8) under
the study's default operator, each read on the default search text (8 x 256 tokens
strided over the search part), on more search text in both window lengths, on the
held-out text (the report part's first 16,384 tokens in 1,024-token windows), on the
*same* held-out tokens in 256-token windows (the window length alone changes), and on
16 x 1,024 tokens strided over the whole report part (the articles alone change). Every
ratio is to the unpruned model on the same windows. Text: the Wikipedia sample of the
``exllamav2`` package (not WikiText-2).
"""

from __future__ import annotations

import argparse
import math
import time

from frontier import settings
from frontier.data.text import Role, TextSource, token_windows
from frontier.models import load_model
from frontier.pruning.plan import Plan
from frontier.search.context import build_operator
from frontier.study.spec import StudySpec
from objectives._lm import mean_nll

TEXTS: dict[str, tuple[Role, int, int, bool]] = {  # name: (role, tokens, window, strided)
    "search strided 8x256 (the default search text)": ("search", 2048, 256, True),
    "search strided 32x256": ("search", 8192, 256, True),
    "search strided 8x1024": ("search", 8192, 1024, True),
    "report first 16x1024 (held-out)": ("report", 16384, 1024, False),
    "report first 64x256 (same tokens)": ("report", 16384, 256, False),
    "report strided 16x1024 (other articles)": ("report", 16384, 1024, True),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--keeps", default="0.5,0.6")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    settings.set_threads(args.threads)
    spec = StudySpec(model=args.model).resolved()
    lm = load_model(spec.model, dtype=spec.dtype, device=spec.device)
    op = build_operator(spec, lm, say=print)
    src = TextSource(spec.text)
    ids = {
        name: token_windows(src, role, lm.tokenizer, n_tokens=n, seq_len=w, strided=s).ids
        for name, (role, n, w, s) in TEXTS.items()
    }
    t = time.perf_counter()
    base = {name: mean_nll(lm.model, x) for name, x in ids.items()}
    print(f"unpruned perplexity ({time.perf_counter() - t:.0f} s):")
    for name, v in base.items():
        print(f"  {name:45s} {math.exp(v):8.2f}")
    for keep in (float(k) for k in args.keeps.split(",")):
        plan = Plan.uniform(keep, op.full)
        t = time.perf_counter()
        with op.pruned(plan):
            ratios = {n: math.exp(mean_nll(lm.model, x) - base[n]) for n, x in ids.items()}
        removed = plan.removed_fraction
        print(f"uniform keep {keep} ({removed:.1%} removed; {time.perf_counter() - t:.0f} s):")
        for name, v in ratios.items():
            print(f"  {name:45s} ratio {v:.3f}")


if __name__ == "__main__":
    main()
