"""Calibration Grams: one full product per batch against upper-triangle column blocks.

    python benchmarks/gram.py [--model smollm2-135m] [--tokens 8192] [--repeats 2]

Side by side in one process, alternating: the calibration pass without Grams (the
activation statistics alone), with the Grams summed as one full ``x^T x`` per batch
(``blocks=1``, what the pass did before 2026-11-30), and in the default blocks. Prints
the seconds of each and the largest relative difference between the two Grams.
"""

from __future__ import annotations

import argparse
import functools
import time

import frontier.importance._stats as stats_module
from frontier import settings
from frontier.data.text import TextSource, token_windows
from frontier.importance._gram import GramAccumulator
from frontier.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    settings.set_threads(args.threads)
    lm = load_model(args.model)
    src = TextSource("wiki-sample")
    ids = token_windows(src, "calibration", lm.tokenizer, n_tokens=args.tokens, seq_len=512).ids
    ways = {
        "statistics only": (None, False),
        "one full product (blocks=1)": (functools.partial(GramAccumulator, blocks=1), True),
        "upper-triangle blocks (default)": (GramAccumulator, True),
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    grams = {}
    for _ in range(args.repeats):
        for name, (accumulator, with_grams) in ways.items():
            if accumulator is not None:
                stats_module.GramAccumulator = accumulator  # type: ignore[misc,assignment]
            t = time.perf_counter()
            _, grams[name] = stats_module.calibration_pass(
                lm.model, lm.adapter, ids, grams=with_grams
            )
            seconds[name].append(time.perf_counter() - t)
    stats_module.GramAccumulator = GramAccumulator  # type: ignore[misc]
    print(f"{args.model}, {ids.numel():,} calibration tokens, {args.repeats} repeats:")
    for name, values in seconds.items():
        runs = "  ".join(f"{v:.1f}" for v in values)
        print(f"  {name:32s} median {sorted(values)[len(values) // 2]:.1f} s ({runs})")
    full, blocks = grams["one full product (blocks=1)"], grams["upper-triangle blocks (default)"]
    assert full is not None and blocks is not None
    pairs = zip(full.fit, blocks.fit, strict=True)
    diff = max(float((a - b).abs().max() / a.abs().max()) for a, b in pairs)
    print(f"  largest relative difference between the Grams: {diff:.2e}")


if __name__ == "__main__":
    main()
