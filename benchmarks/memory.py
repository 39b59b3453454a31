"""Peak memory and seconds of each stage of a study, beside frontier.memory's estimate.

    python benchmarks/memory.py [--models smollm2-135m,gemma3-270m,qwen2.5-coder-1.5b] \
        [--shapes llama-3.2-1b] [--shape-layers N] [--tokens 16384] [--memory GIB] \
        [--out benchmarks/results/memory.json]

Each model runs in a process of its own (``python -m frontier._memprobe``), one after
the other, in a fresh cache folder (nothing is read from an earlier run): calibration
(``--tokens`` calibration tokens of the Wikipedia sample's calibration part, or random
ids for a ``--shapes`` model built from its config with random weights), the greedy OBS
ranking, the refit's set-up, and one trial (uniform keep 0.5: the refit's weights and
one 2,048-token search evaluation). For each stage it prints the peak host memory
(VmHWM, reset before the stage), the estimate ``frontier.memory`` made for it from the
config alone, their ratio, and the seconds; for the trial also the refit's share of the
search evaluation's time. On a GPU the peak GPU memory too. The host budget is the
default share of this machine's memory unless ``--memory`` sets it; the layout it chose
(in memory or lean, passes, factors in memory) is printed with each model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 2**30


def probe(
    which: list[str], tokens: int, memory: float | None, home: str, layers: int | None = None
) -> list[dict]:
    cmd = [sys.executable, "-m", "frontier._memprobe", *which, "--tokens", str(tokens)]
    if layers:
        cmd += ["--layers", str(layers)]
    if memory is not None:
        cmd += ["--memory", str(memory)]
    env = {**os.environ, "FRONTIER_HOME": home, "HF_HUB_OFFLINE": "1"}
    # a fresh folder reads the converted models and the text from the shared one
    shared = Path(os.environ.get("FRONTIER_HOME", Path.home() / ".cache" / "frontier"))
    if Path(home).resolve() != shared.resolve():
        for sub in ("models", "data"):
            if (shared / sub).is_dir() and not (Path(home) / sub).exists():
                (Path(home) / sub).symlink_to(shared / sub)
    # the probe's progress lines (with the time left) pass through to this terminal or log
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    rows = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    if out.returncode != 0:
        rows.append({"stage": "error", "message": f"the probe exited with {out.returncode}"})
    return rows


def estimates(gpu_gib: float, host_gib: float) -> None:
    """The estimate alone, for every real shape in bf16 on a GPU of ``gpu_gib`` with a
    host of ``host_gib`` (the default share of it as the budget): nothing is run."""
    from frontier import budget, memory
    from frontier.testing import REAL_SHAPES, real_shape_config

    gpu, host = int(gpu_gib * GIB), int(host_gib * GIB * budget.DEFAULT_SHARE)
    print(
        f"estimates: bf16 on a {gpu_gib:g} GiB GPU, host budget {host / GIB:.1f} GiB "
        f"({budget.DEFAULT_SHARE:.0%} of {host_gib:g})"
    )
    print(
        "| shape | weights | GPU peak | host peak | set-up on | calibration passes | "
        "factor layers in memory | disk |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in REAL_SHAPES:
        config = real_shape_config(name)
        _, hidden, width = memory.mlp_shape(config)
        try:
            layout = memory.plan_layout(
                config, "bf16", compact=True, on_gpu=True, budget=host, gpu_bytes=gpu
            )
        except Exception as exc:  # a one-line refusal: print it as the row
            print(f"| {name} | {exc} |")
            continue
        peaks = layout.peaks(width=width, hidden=hidden, on_gpu=True, gpu_bytes=gpu)
        on_host = not layout.setup_on_gpu(gpu)
        gpu_peak = layout.gpu_peak(width=width, hidden=hidden, gpu_bytes=gpu)
        fits = "" if gpu_peak <= gpu - memory.CUDA_CONTEXT else " (does not fit)"
        # the pass sums on the GPU: 40% of what is free beside the weights, at most 16 GiB
        free = gpu - memory.CUDA_CONTEXT - layout.needs.weights
        per = 2 * (width + 1) ** 2 * 8
        passes = -(-layout.layers // max(1, int(min(0.4 * free, 16 * GIB) // per)))
        print(
            f"| {name} | {layout.needs.weights / GIB:.1f} GiB | {gpu_peak / GIB:.1f} GiB{fits} | "
            f"{max(peaks.values()) / GIB:.1f} GiB | {'host' if on_host else 'GPU'} | "
            f"{passes} | {layout.factor_layers}/{layout.layers} | "
            f"{layout.disk_bytes() / GIB:.0f} GiB |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m,qwen2.5-coder-1.5b")
    ap.add_argument("--shapes", default="llama-3.2-1b")
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--memory", type=float, default=None)
    ap.add_argument(
        "--layers",
        type=int,
        default=None,
        help="the first N decoder layers only: seconds per layer of a model too slow to run "
        "whole here, and a full_eval row timing the whole model's search evaluation (its "
        "memory peaks carry the whole model's weights: not comparable with the estimate)",
    )
    ap.add_argument(
        "--shape-layers",
        type=int,
        default=None,
        help="build each --shapes model with N decoder layers (its config says N): a real "
        "layer shape too large to run whole here, whose peaks are comparable with the "
        "estimate (it is made for that config), unlike --layers",
    )
    ap.add_argument("--out", default="benchmarks/results/memory.json")
    ap.add_argument(
        "--shared-cache",
        action="store_true",
        help="calibrate into $FRONTIER_HOME (a later study of the same model and "
        "calibration reads it) instead of a fresh folder",
    )
    ap.add_argument(
        "--estimates",
        metavar="GPU_GIB,HOST_GIB",
        help="print the estimate for every real shape in bf16 on such a machine; run nothing",
    )
    args = ap.parse_args()
    if args.estimates:
        gpu_gib, host_gib = (float(x) for x in args.estimates.split(","))
        estimates(gpu_gib, host_gib)
        return
    cases = [["--model", m] for m in args.models.split(",") if m]
    layers = ["--config", json.dumps({"num_hidden_layers": args.shape_layers})]
    cases += [
        ["--shape", s, *(layers if args.shape_layers else [])] for s in args.shapes.split(",") if s
    ]
    results: dict[str, list[dict]] = {}
    print(
        f"{time.strftime('%Y-%m-%d')}: {args.tokens:,} calibration tokens, host budget "
        f"{'default' if args.memory is None else f'{args.memory} GiB'}"
    )
    for case in cases:
        name = case[1] + (f"-{args.shape_layers}-layers" if len(case) > 2 else "")
        if args.shared_cache:
            home = os.environ.get("FRONTIER_HOME", str(Path.home() / ".cache" / "frontier"))
            rows = probe(case, args.tokens, args.memory, home, args.layers)
        else:
            with tempfile.TemporaryDirectory(prefix="frontier-mem-") as home:
                rows = probe(case, args.tokens, args.memory, home, args.layers)
        results[name] = rows
        print(f"\n{name}")
        for r in rows:
            if r["stage"] == "error":
                print(f"  error: {r['message']}")
                continue
            if "layout" in r:
                print(f"  layout: {r['layout']}")
            est = r.get("estimate")
            ratio = f"{est / r['host_peak']:.2f}" if est else "-"
            line = (
                f"  {r['stage']:12s} peak {r['host_peak'] / GIB:6.2f} GiB  estimate "
                + (f"{est / GIB:6.2f} GiB" if est else "     -    ")
                + f"  est/peak {ratio:>5s}  {r['seconds']:8.1f} s"
            )
            if "gpu_peak" in r:
                line += f"  GPU peak {r['gpu_peak'] / GIB:.2f} GiB"
                if r.get("gpu_estimate"):
                    line += f" (estimate {r['gpu_estimate'] / GIB:.2f})"
            if r["stage"] == "trial":
                line += (
                    f"  refit {r['refit_seconds']:.2f} s / search evaluation "
                    f"{r['eval_seconds']:.2f} s = {r['refit_share']:.3f}"
                )
            print(line, flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"tokens": args.tokens, "results": results}, indent=1))


if __name__ == "__main__":
    main()
