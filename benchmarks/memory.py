"""Peak memory and seconds of each stage of a study, beside frontier.memory's estimate.

    python benchmarks/memory.py [--models smollm2-135m,gemma3-270m,qwen2.5-coder-1.5b] \
        [--shapes llama-3.2-1b] [--tokens 16384] [--memory GIB] \
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


def probe(which: list[str], tokens: int, memory: float | None, home: str) -> list[dict]:
    cmd = [sys.executable, "-m", "frontier._memprobe", *which, "--tokens", str(tokens)]
    if memory is not None:
        cmd += ["--memory", str(memory)]
    env = {**os.environ, "FRONTIER_HOME": home, "HF_HUB_OFFLINE": "1"}
    # the converted models stay where they are: link the shared models folder in
    shared = Path(os.environ.get("FRONTIER_HOME", Path.home() / ".cache" / "frontier"))
    if (shared / "models").is_dir() and not (Path(home) / "models").exists():
        (Path(home) / "models").symlink_to(shared / "models")
    if (shared / "data").is_dir() and not (Path(home) / "data").exists():
        (Path(home) / "data").symlink_to(shared / "data")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    rows = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        rows.append({"stage": "error", "message": tail})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m,qwen2.5-coder-1.5b")
    ap.add_argument("--shapes", default="llama-3.2-1b")
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--memory", type=float, default=None)
    ap.add_argument("--out", default="benchmarks/results/memory.json")
    args = ap.parse_args()
    cases = [["--model", m] for m in args.models.split(",") if m]
    cases += [["--shape", s] for s in args.shapes.split(",") if s]
    results: dict[str, list[dict]] = {}
    print(
        f"{time.strftime('%Y-%m-%d')}: {args.tokens:,} calibration tokens, host budget "
        f"{'default' if args.memory is None else f'{args.memory} GiB'}"
    )
    for case in cases:
        name = case[1]
        with tempfile.TemporaryDirectory(prefix="frontier-mem-") as home:
            rows = probe(case, args.tokens, args.memory, home)
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
