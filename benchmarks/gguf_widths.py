"""Generation speed in llama.cpp of f16 SmolLM2 files by MLP width, padded and not.

    python benchmarks/gguf_widths.py [--widths 768,800,816,832] [--pad 64] [--rounds 10]

ggml's CPU dot product of f16 rows (``ggml_vec_dot_f16``, what a generated token's
matrix-vector products run) reads a row in SIMD steps of ``GGML_F16_STEP`` values (64 on
AVX-512 without FP16 arithmetic, 32 on AVX2) and the leftover values one at a time. The
MLP down-projection's rows are as long as the MLP is wide, so a width off a multiple of
the step leaves a scalar tail in every row of every layer.

Each width is written twice from the same pruned model (uniform plan, neurons chosen at
random: the weights do not change the speed): at its own width and zero-padded up to a
multiple of ``--pad`` (same outputs). Every file runs once per round (interleaved), and
the figure is the median over rounds of its generation tokens/s over the unpruned
file's in the same round. Needs ``frontier llamacpp build``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch

from frontier.export import llamacpp as _llamacpp
from frontier.export._gguf import built_widths, write_gguf
from frontier.models import load_model
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--widths", default="768,800,816,832")
    ap.add_argument("--pad", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=64)
    args = ap.parse_args()
    _llamacpp.require()
    torch.set_num_threads(args.threads)
    lm = load_model(args.model)
    full = lm.adapter.full_widths(lm.model)
    gen = torch.Generator().manual_seed(0)
    pruner = Pruner(lm.model, [torch.rand(w, generator=gen) for w in full])
    root = Path(tempfile.mkdtemp(prefix="gguf-widths-"))
    files: dict[str, Path] = {}
    for w in [full[0], *(int(x) for x in args.widths.split(","))]:
        plan = Plan((w,) * len(full), tuple(full))
        with pruner.pruned(pruner.select(plan)):
            for multiple in (1, args.pad):
                (padded,) = built_widths([w], "exact", "f16", multiple)
                label = f"{w}" if padded == w else f"{w}->{padded}"
                if label in files or (multiple > 1 and padded == w):
                    continue
                path = root / f"w{w}-m{multiple}.gguf"
                write_gguf(
                    lm.model, lm.tokenizer, plan.widths, path, "f16", name=label, multiple=multiple
                )
                files[label] = path
                print(f"wrote {label} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)
    speeds: dict[str, list[float]] = {k: [] for k in files}
    for r in range(args.rounds):
        for label, path in files.items():
            s = _llamacpp.bench(
                path, n_prompt=args.prompt, n_gen=args.gen, reps=1, threads=args.threads
            )
            speeds[label].append(s.generation)
        print(f"round {r + 1}/{args.rounds}", flush=True)
    base = speeds[str(full[0])]
    print(
        f"\nf16, {args.threads} threads, {os.cpu_count()} cores, llama-bench -p {args.prompt} "
        f"-n {args.gen}, {args.rounds} interleaved rounds"
    )
    print("| MLP width (built) | tg tok/s median | speed-up, median of per-round ratios |")
    print("|---|---|---|")
    for label, tg in speeds.items():
        ratio = statistics.median(a / b for a, b in zip(tg, base, strict=True))
        print(f"| {label} | {statistics.median(tg):.1f} | x{ratio:.3f} |")


if __name__ == "__main__":
    main()
