"""Time and memory of a study per model shape, on the GPU where there is one.

    python benchmarks/gpu.py [--shapes smollm2-135m,llama-3.2-1b,llama-3.1-8b] \
        [--dtype bf16] [--calibration-tokens 65536] [--out benchmarks/results/gpu.json]

Each shape (:data:`frontier.testing.REAL_SHAPES`, published configs) is built with
``from_config`` on the device, with random weights: its perplexity means nothing, its
time and memory are real. For each it measures, side by side in one run:

- **load**: materialising the weights on the device in ``--dtype`` (a real checkpoint
  adds reading its files);
- **calibration**: one calibration pass over ``--calibration-tokens`` random tokens in
  512-token windows with the Gram matrices (summed on the device, a group of layers at a
  time), the ``--criterion`` scores (default: the study's, greedy OBS; their seconds
  also apart, as ``scores_s``), and the refit's set-up (ridge strengths on the held-out
  windows, the factors): the study's default operator;
- **trial**: apply a per-layer plan (keep ratios 0.5 to 0.9) with the refit, perplexity
  on 2,048 tokens in 1,024-token windows, restore; the median of ``--timed`` trials;
- **final evaluation**: one 16,384-token perplexity (the final re-measurement's unit);
- **peak GPU memory** (``torch.cuda.max_memory_allocated``) and peak host memory (RSS);
- **a 100-trial study**: load + calibration + 100 trials + 13 final evaluations.

A shape whose statistics would not fit this machine's host memory is skipped with what it
needs (:mod:`frontier.memory`). Results are written after every shape.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from frontier.arch import adapter_for
from frontier.budget import available_host_bytes
from frontier.errors import FrontierError
from frontier.importance import Scores, get_criterion
from frontier.importance._stats import calibration_pass
from frontier.memory import GIB, estimate
from frontier.models.device import device_name, resolve_device, resolve_dtype, torch_dtype
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.study.spec import StudySpec
from frontier.testing import REAL_SHAPES, real_shape_config
from objectives._lm import mean_nll


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clock(device: torch.device) -> float:
    _sync(device)
    return time.perf_counter()


def _host_peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def measure(
    name: str, device: torch.device, dtype: str, args: argparse.Namespace
) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM

    config = real_shape_config(name)
    needs = estimate(config, dtype, compact=device.type == "cuda")
    have = available_host_bytes()
    out: dict[str, Any] = {"shape": name, "estimate_gib": needs.to_dict()}
    on_gpu = device.type == "cuda"
    free = torch.cuda.mem_get_info(device)[0] if on_gpu else 0
    host_need = needs.host(factors_on_device=on_gpu and needs.refit_factors <= free // 2)
    if have is not None and host_need > have:
        out["skipped"] = (
            f"needs about {host_need / GIB:.1f} GiB of host memory, {have / GIB:.1f} free"
        )
        return out
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    gen = torch.Generator().manual_seed(0)
    vocab = int(config.vocab_size)

    t = _clock(device)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype(dtype)).eval()
    out["load_s"] = _clock(device) - t

    adapter = adapter_for(model.config)
    handles = adapter.handles(model)
    ids = torch.randint(0, vocab, (args.calibration_tokens // 512, 512), generator=gen)
    t = _clock(device)
    stats, _ = calibration_pass(model, adapter, ids, batch_size=args.batch)
    t_scores = _clock(device)
    crit = get_criterion(args.criterion)
    scores = Scores(crit.name, tuple(crit.fn(handles, stats)), stats)
    out["scores_s"] = _clock(device) - t_scores
    operator = PruningOperator(model, scores, refit=True)
    out["calibration_s"] = _clock(device) - t
    assert operator.refitter is not None
    out["refit_factors"] = operator.refitter.placement()

    ratios = [0.5 + 0.4 * (i % 5) / 4 for i in range(len(handles))]
    plan = Plan.from_ratios(ratios, operator.full, multiple=8, floor=8)
    search = torch.randint(0, vocab, (2, 1024), generator=gen)
    final = torch.randint(0, vocab, (16, 1024), generator=gen)
    times = []
    for _ in range(args.timed + 1):  # the first is a warm-up
        t = _clock(device)
        with operator.pruned(plan):
            nll = mean_nll(model, search)
        times.append(_clock(device) - t)
    out["trial_s"] = statistics.median(times[1:])
    out["trial_nll"] = nll
    t = _clock(device)
    mean_nll(model, final)
    out["final_eval_s"] = _clock(device) - t
    out["study_100_trials_min"] = (
        out["load_s"] + out["calibration_s"] + 100 * out["trial_s"] + 13 * out["final_eval_s"]
    ) / 60
    if on_gpu:
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated(device) / GIB
    out["peak_host_gib"] = _host_peak_gib()
    del operator, model
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="smollm2-135m,llama-3.2-1b,llama-3.1-8b")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--calibration-tokens", type=int, default=65536)
    ap.add_argument("--batch", type=int, default=8, help="calibration windows per forward")
    ap.add_argument("--criterion", default=StudySpec.criterion)
    ap.add_argument("--timed", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/gpu.json")
    args = ap.parse_args()
    where = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, where)
    device = torch.device(where)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # as a user's GPU run would
    results: dict[str, Any] = {
        "device": device_name(where),
        "dtype": dtype,
        "torch": torch.__version__,
        "calibration_tokens": args.calibration_tokens,
        "shapes": [],
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for name in (s for s in args.shapes.split(",") if s):
        if name not in REAL_SHAPES:
            raise FrontierError(f"unknown shape {name!r}; known: {', '.join(REAL_SHAPES)}")
        print(f"== {name} on {results['device']} in {dtype}", flush=True)
        try:
            row = measure(name, device, dtype, args)
        except torch.OutOfMemoryError as exc:
            row = {"shape": name, "skipped": f"out of memory: {str(exc).splitlines()[0]}"}
            torch.cuda.empty_cache()
        results["shapes"].append(row)
        print(json.dumps(row), flush=True)
        out_path.write_text(json.dumps(results, indent=1))
    print(f"{'shape':<14} {'load s':>7} {'calib s':>8} {'trial s':>8} {'peak GPU':>9} "
          f"{'peak host':>10} {'100 trials':>11}")  # fmt: skip
    for r in results["shapes"]:
        if "skipped" in r:
            print(f"{r['shape']:<14} skipped: {r['skipped']}")
            continue
        gpu = f"{r['peak_gpu_gib']:.1f} GiB" if "peak_gpu_gib" in r else "n/a"
        print(
            f"{r['shape']:<14} {r['load_s']:>7.1f} {r['calibration_s']:>8.1f} "
            f"{r['trial_s']:>8.3f} {gpu:>9} {r['peak_host_gib']:>6.1f} GiB "
            f"{r['study_100_trials_min']:>7.1f} min"
        )


if __name__ == "__main__":
    main()
