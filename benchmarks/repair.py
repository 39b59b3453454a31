"""Repair benchmark: points past the ``ppl<2.0`` boundary, before and after repair.

    nice -n 5 python benchmarks/repair.py [--removed 0.6,0.7] [--cpu-minutes 25] \
        [--out benchmarks/results/repair.json]

For each MLP fraction removed (a uniform plan made with :meth:`frontier.pruning.plan.Plan.uniform`,
applied by a study's default pruning operator, obs scores + refit on the default
calibration, or with ``--old-operator`` activation scores and no refit), it measures the held-out
perplexity ratio (the ``ppl`` objective with ``role="report"``: the report part of the
Wikipedia sample, 16,384 tokens in 1,024-token windows) and arc_easy / hellaswag accuracy
on report documents (the ``tasks`` objective, ``role="report"``), then repairs the point
(:func:`frontier.repair.repair`, calibration text only) and measures the same again.
Repair cost is process CPU time (the machine is shared, so wall time says little).

The ladder is adaptive: after each point, the next removes ``--step`` more when the
repaired ratio was below the SLO and ``--step`` less otherwise, until ``--points`` ran.
Results are written after every point, so an interrupted run keeps what finished.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from frontier import settings
from frontier.models import load_model
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import count_mlp_parameters
from frontier.repair import PlainReporter, RepairConfig, repair, repair_data
from frontier.search.context import build_operator, check_tasks
from frontier.study.spec import StudySpec
from objectives import create


def _figures(lm: Any, ppl: Any, tasks: Any) -> dict[str, Any]:
    t = time.process_time()
    m = ppl.evaluate(lm)
    out: dict[str, Any] = {"ppl": m.raw, "ppl_ratio": m.value}
    if tasks is not None:
        tm = tasks.evaluate(lm)
        keep = ("acc", "retained", "ci", "confidence", "gained", "lost", "n_docs")
        out["tasks"] = {k: {f: d[f] for f in keep if f in d} for k, d in tm.details.items()}
        out["mean_retained"] = tm.value
    out["eval_cpu_seconds"] = time.process_time() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument(
        "--removed", default="0.6", help="first fraction(s) of MLP removed, comma-separated"
    )
    ap.add_argument("--points", type=int, default=2)
    ap.add_argument("--step", type=float, default=0.1)
    ap.add_argument("--slo", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-windows", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--ce-weight", type=float, default=0.0)
    ap.add_argument("--eval-every", type=int, default=20)
    ap.add_argument("--heldout-tokens", type=int, default=2048)
    ap.add_argument("--cpu-minutes", type=float, default=25.0)
    ap.add_argument("--report-tokens", type=int, default=16384)
    ap.add_argument("--task-docs", default="arc_easy=100,hellaswag=40")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/repair.json")
    ap.add_argument("--old-operator", action="store_true", help="activation scores, no refit")
    args = ap.parse_args()
    settings.set_threads(args.threads)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    say = PlainReporter(lambda m: print(m, flush=True), every=5)

    lm = load_model(args.model)
    spec = StudySpec(model=args.model)
    if args.old_operator:
        spec = spec.replace(criterion="activation", refit=False)
    pruner = build_operator(spec, lm, say=lambda m: print(m, flush=True))
    mlp_total = count_mlp_parameters(lm.model)
    ppl = create("ppl", role="report", n_tokens=args.report_tokens)
    ppl.prepare(lm)
    docs = {k: int(v) for k, v in (kv.split("=") for kv in args.task_docs.split(",") if kv)}
    tasks = create("tasks", tasks=list(docs), n_docs=docs, role="report") if docs else None
    if tasks is not None:
        check_tasks(tuple(docs), lambda m: print(m, flush=True))  # builds the offline mirror
        tasks.prepare(lm)
    config = RepairConfig(
        steps=args.steps,
        batch_windows=args.batch_windows,
        seq_len=512,
        lr=args.lr,
        temperature=args.temperature,
        ce_weight=args.ce_weight,
        heldout_tokens=args.heldout_tokens,
        eval_every=args.eval_every,
        cpu_minutes=args.cpu_minutes,
        warmup_steps=5,
    )
    data = repair_data(
        "wiki-sample",
        lm.tokenizer,
        seq_len=config.seq_len,
        heldout_tokens=config.heldout_tokens,
        max_train_tokens=config.steps * config.batch_windows * config.seq_len,
    )
    results: dict[str, Any] = {
        "model": args.model,
        "plans": f"uniform, operator {pruner.name} ({spec.calibration_tokens} calibration tokens)",
        "operator": pruner.describe(),
        "ppl_protocol": ppl.protocol(),
        "tasks_protocol": tasks.protocol() if tasks is not None else None,
        "repair_config": config.to_dict(),
        "repair_data": data.describe(),
        "threads": torch.get_num_threads(),
        "points": [],
    }
    queue = [float(x) for x in args.removed.split(",")]
    done: set[float] = set()
    while queue and len(results["points"]) < args.points:
        removed = round(queue.pop(0), 4)
        done.add(removed)
        plan = Plan.uniform(1.0 - removed, pruner.full)
        print(f"== {plan.describe()}", flush=True)
        with pruner.pruned(plan):
            before = _figures(lm, ppl, tasks)
        print(f"before repair: {json.dumps(before)}", flush=True)
        result = repair(pruner, plan, data, config, reporter=say)
        after = _figures(lm, ppl, tasks)
        pruner.restore()
        print(f"after repair: {json.dumps(after)}", flush=True)
        point = {
            "removed_mlp_fraction": plan.removed_fraction,
            "mlp_parameters_kept": round(mlp_total * plan.kept_fraction),
            "before": before,
            "after": after,
            "repair": {
                "cpu_minutes": result.cpu_seconds / 60,
                "wall_minutes": result.wall_seconds / 60,
                "steps_run": result.steps_run,
                "kept_step": result.kept_step,
                "stop_reason": result.stop_reason,
                "tokens_trained": result.tokens_trained,
                "heldout_history": result.history,
            },
        }
        results["points"].append(point)
        ok = [p for p in results["points"] if p["after"]["ppl_ratio"] < args.slo]
        results["largest_removed_below_slo_after_repair"] = (
            max(p["removed_mlp_fraction"] for p in ok) if ok else None
        )
        out_path.write_text(json.dumps(results, indent=1))
        nxt = round(removed + (args.step if after["ppl_ratio"] < args.slo else -args.step), 4)
        if not queue and 0 < nxt < 1 and nxt not in done:
            queue.append(nxt)
    print(json.dumps({k: v for k, v in results.items() if k != "points"}, indent=1), flush=True)


if __name__ == "__main__":
    main()
