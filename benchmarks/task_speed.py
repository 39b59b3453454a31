"""Task scoring speed: lm-eval's ``HFLM`` against the shared-context scorer, side by side.

    nice -n 5 python benchmarks/task_speed.py [--models smollm2-135m,gemma3-270m]
        [--with-qwen] [--tasks arc_easy,hellaswag] [--docs 50] [--rounds 2]

For each model and task, the same search-role documents (as the ``tasks`` objective
chooses them, batch size ``--batch-size``) are evaluated with both scorers the way the
objective evaluates them (one lm-eval ``evaluate`` of the in-memory model): documents per
second end to end, and the time spent inside ``loglikelihood`` (the scorer alone; the rest
is lm-eval building requests and metrics). The two scorers alternate ABBA over
``--rounds`` rounds in one process, after one warm-up each, so a machine shared with other
work slows both alike: the ratios are meaningful where the absolute figures are not. Also
the largest difference between their per-document log-likelihoods (every choice of every
document) and whether every accuracy (acc, acc_norm) is the same.

``--with-qwen`` adds qwen2.5-coder-1.5b (6 GB in fp32; minutes per task on a CPU).
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any

import torch

from frontier import settings
from frontier.data.mirror import build_mirror
from frontier.models import load_model
from objectives._tasks_lmeval import hf_wrapper, run
from objectives.tasks import SCORERS, TaskAccuracy


def _timed_wrapper(lm: Any, batch_size: int, scorer: str) -> tuple[Any, list[float]]:
    """The objective's wrapper, with the seconds of each ``loglikelihood`` call logged."""
    wrapper = hf_wrapper(lm, batch_size, scorer)
    spent: list[float] = []
    inner = wrapper.loglikelihood

    @functools.wraps(inner)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = inner(*args, **kwargs)
        spent.append(time.perf_counter() - t)
        return out

    wrapper.loglikelihood = timed
    return wrapper, spent


def _figures(out: Any) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per-document log-likelihoods (one per choice) and the accuracies."""
    lls = {
        f"{leaf}/{row['doc_id']}": [float(r[0][0]) for r in row["resps"]]
        for leaf, rows in out["samples"].items()
        for row in rows
    }
    accs = {
        f"{task}:{key.split(',')[0]}": float(value)
        for task, figures in out["results"].items()
        for key, value in figures.items()
        if key in ("acc,none", "acc_norm,none")
    }
    return lls, accs


def measure(lm: Any, task: str, docs: int, batch_size: int, rounds: int) -> dict[str, Any]:
    obj = TaskAccuracy([task], n_docs=docs, role="search", batch_size=batch_size)
    samples = obj.doc_indices()
    task_dict = obj._task_dict  # the objective's own task objects
    assert task_dict is not None
    wrappers = {s: _timed_wrapper(lm, batch_size, s) for s in SCORERS}
    for wrapper, _ in wrappers.values():  # warm-up: datasets, tokenizer, allocator
        run(wrapper, task_dict, {k: v[:2] for k, v in samples.items()})
    wall = dict.fromkeys(SCORERS, 0.0)
    cpu = dict.fromkeys(SCORERS, 0.0)
    inside = dict.fromkeys(SCORERS, 0.0)
    figures: dict[str, Any] = {}
    for r in range(rounds):
        for scorer in SCORERS if r % 2 == 0 else SCORERS[::-1]:
            wrapper, spent = wrappers[scorer]
            spent.clear()
            t, c = time.perf_counter(), time.process_time()
            out = run(wrapper, task_dict, samples)
            wall[scorer] += time.perf_counter() - t
            cpu[scorer] += time.process_time() - c
            inside[scorer] += sum(spent)
            figures.setdefault(scorer, _figures(out))
    (ll_h, acc_h), (ll_s, acc_s) = figures["hflm"], figures["shared-context"]
    n = sum(len(v) for v in samples.values())
    return {
        "docs": n,
        "docs_per_s": {s: rounds * n / wall[s] for s in SCORERS},
        "speedup_wall": wall["hflm"] / wall["shared-context"],
        "speedup_cpu": cpu["hflm"] / cpu["shared-context"],
        "speedup_scorer": inside["hflm"] / inside["shared-context"],
        "scorer_share": {s: inside[s] / wall[s] for s in SCORERS},
        "max_abs_ll_diff": max(
            abs(a - b) for k in ll_h for a, b in zip(ll_h[k], ll_s[k], strict=True)
        ),
        "accuracies_match": acc_h == acc_s,
        "accuracies": acc_h,
        "routes": dict(wrappers["shared-context"][0].routes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--with-qwen", action="store_true", help="add qwen2.5-coder-1.5b")
    ap.add_argument("--tasks", default="arc_easy,hellaswag")
    ap.add_argument("--docs", type=int, default=50, help="search documents per task")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2, help="ABBA rounds per model and task")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    settings.set_threads(args.threads)
    models = [m for m in args.models.split(",") if m]
    if args.with_qwen:
        models.append("qwen2.5-coder-1.5b")
    tasks = [t for t in args.tasks.split(",") if t]
    build_mirror(tasks=tasks)
    print(
        f"task scoring speed: HFLM vs shared-context, {args.docs} search documents per task, "
        f"batch {args.batch_size}, {torch.get_num_threads()} torch thread(s), fp32 CPU, "
        f"{args.rounds} ABBA rounds after a warm-up of each; docs/s are wall-clock over "
        "whole lm-eval evaluations. The machine may be shared with other work: both "
        "scorers run interleaved in this one process, so their ratios are comparable, "
        "their absolute speeds less so."
    )
    head = (
        f"{'model':20s} {'task':10s} {'docs':>4s} {'HFLM doc/s':>10s} {'shared doc/s':>12s} "
        f"{'x wall':>6s} {'x CPU':>6s} {'x scorer':>8s} {'max|dLL|':>9s} {'acc same':>8s}"
    )
    print(head)
    for name in models:
        lm = load_model(name)
        for task in tasks:
            m = measure(lm, task, args.docs, args.batch_size, args.rounds)
            print(
                f"{name:20s} {task:10s} {m['docs']:4d} {m['docs_per_s']['hflm']:10.3f} "
                f"{m['docs_per_s']['shared-context']:12.3f} {m['speedup_wall']:6.2f} "
                f"{m['speedup_cpu']:6.2f} {m['speedup_scorer']:8.2f} "
                f"{m['max_abs_ll_diff']:9.2e} {'yes' if m['accuracies_match'] else 'NO':>8s}"
                f"   {m['accuracies']} routes {m['routes']} scorer share of wall "
                f"{m['scorer_share']['hflm']:.0%} / {m['scorer_share']['shared-context']:.0%}",
                flush=True,
            )
        del lm


if __name__ == "__main__":
    main()
