"""Task floors decided on fixed and on adaptive document counts, against a large re-measurement.

    nice -n 5 python benchmarks/task_floors.py [--removed 0.15,0.25,...] [--threads 2] \
        [--out benchmarks/results/task-floors-smollm2.json]

For each uniform plan (a study's default operator, obs scores + refit), the floors
``arc_easy>=90%`` and ``hellaswag>=90%`` are decided three ways on search documents:

- **fixed, point**: ``--fixed-docs`` documents per task, reject when the retention
  estimate is below the floor (how studies decided before paired intervals);
- **fixed, interval**: the same documents, reject only when the floor lies above the
  whole paired interval at ``--confidence`` (``confidence`` set, ``max_task_docs`` unset);
- **adaptive**: ``--first-docs`` documents, doubled while the floor is undecided, up to
  ``--max-docs`` (``max_task_docs``), rejected as in the interval rule.

The reference is the same plan on ``--reference-docs`` report documents per task, which
neither search measurement reads. A search decision is **wrong** when the reference
decides the floor the other way with its own interval at ``--confidence``: a rejection of
a trial the reference passes, or a keep of one it fails. Where the reference itself is
undecided, no search decision is counted wrong. Costs are process CPU seconds of each
measurement (the documents each decision used are listed per plan).
Results are written after every plan, so an interrupted run keeps what finished.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from frontier import settings
from frontier.models import load_model
from frontier.plan import Plan
from frontier.search.context import build_operator, check_tasks
from frontier.search.spec import StudySpec
from frontier.study.slo import TaskScore, TrialMetrics, parse_slos
from objectives import create

WAYS = ("fixed_point", "fixed_interval", "adaptive")


def _measure(obj: Any, lm: Any) -> tuple[dict[str, Any], float]:
    t = time.process_time()
    m = obj.evaluate(lm)
    return m.details, time.process_time() - t


def _metrics(details: dict[str, Any], side: str) -> TrialMetrics:
    scores = {name: TaskScore.from_details(d) for name, d in details.items()}
    return dataclasses.replace(TrialMetrics(tasks=scores), side=side)  # type: ignore[arg-type]


def _slim(details: dict[str, Any]) -> dict[str, Any]:
    keep = ("acc", "baseline", "retained", "ci", "n_docs", "looks", "gained", "lost")
    return {n: {k: d[k] for k in keep if k in d} for n, d in details.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--removed", default="0.15,0.25,0.3,0.35,0.45,0.6")
    ap.add_argument("--tasks", default="arc_easy,hellaswag")
    ap.add_argument("--floor", default="90%")
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--fixed-docs", type=int, default=80)
    ap.add_argument("--first-docs", type=int, default=30)
    ap.add_argument("--max-docs", type=int, default=240)
    ap.add_argument("--reference-docs", type=int, default=400)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/task-floors-smollm2.json")
    args = ap.parse_args()
    settings.set_threads(args.threads)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    say = lambda m: print(m, flush=True)  # noqa: E731
    tasks = [t for t in args.tasks.split(",") if t]
    check_tasks(tuple(tasks), say)
    floors = parse_slos([f"{t}>={args.floor}" for t in tasks], known_tasks=tasks)

    lm = load_model(args.model)
    spec = StudySpec(model=args.model)
    pruner = build_operator(spec, lm, say=say)
    common = {"tasks": tasks, "confidence": args.confidence, "seed": spec.seed}
    objectives = {
        "fixed": create("tasks", n_docs=args.fixed_docs, role="search", **common),
        "adaptive": create(
            "tasks",
            n_docs=args.first_docs,
            max_docs=args.max_docs,
            floors=floors,
            role="search",
            **common,
        ),
        "reference": create("tasks", n_docs=args.reference_docs, role="report", **common),
    }
    for name, obj in objectives.items():
        say(f"baseline: {name}")
        obj.prepare(lm)
    results: dict[str, Any] = {
        "model": args.model,
        "plans": f"uniform, operator {pruner.name} ({spec.calibration_tokens} calibration tokens)",
        "floors": [str(f) for f in floors],
        "confidence": args.confidence,
        "protocols": {name: obj.protocol() for name, obj in objectives.items()},
        "threads": torch.get_num_threads(),
        "plans_measured": [],
    }
    for removed in (float(x) for x in args.removed.split(",")):
        plan = Plan.uniform(1.0 - removed, pruner.full)
        say(f"== {plan.describe()}")
        with pruner.pruned(plan):
            fixed, fixed_s = _measure(objectives["fixed"], lm)
            adaptive, adaptive_s = _measure(objectives["adaptive"], lm)
            reference, reference_s = _measure(objectives["reference"], lm)
        row: dict[str, Any] = {
            "removed_mlp_fraction": plan.removed_fraction,
            "cpu_seconds": {"fixed": fixed_s, "adaptive": adaptive_s, "reference": reference_s},
            "fixed": _slim(fixed),
            "adaptive": _slim(adaptive),
            "reference": _slim(reference),
            "floors": {},
        }
        for floor in floors:
            truth = floor.satisfied(_metrics(reference, "estimate"))
            truth_ci = floor.decision(_metrics(reference, "estimate"))
            keeps = {
                "fixed_point": floor.satisfied(_metrics(fixed, "estimate")),
                "fixed_interval": floor.satisfied(_metrics(fixed, "optimistic")),
                "adaptive": floor.satisfied(_metrics(adaptive, "optimistic")),
            }
            docs = {
                "fixed_point": fixed[floor.metric]["n_docs"],
                "fixed_interval": fixed[floor.metric]["n_docs"],
                "adaptive": adaptive[floor.metric]["n_docs"],
            }
            row["floors"][str(floor)] = {
                "reference_estimate": truth,
                "reference": truth_ci,
                "search_keeps": keeps,
                "docs": docs,
                "wrong": {
                    way: (truth_ci == "pass" and not kept) or (truth_ci == "fail" and bool(kept))
                    for way, kept in keeps.items()
                },
            }
        results["plans_measured"].append(row)
        results["summary"] = _summary(results["plans_measured"])
        out_path.write_text(json.dumps(results, indent=1))
        say(json.dumps(row["floors"]))
    say(json.dumps(results["summary"], indent=1))


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    decided = [f for r in rows for f in r["floors"].values() if f["reference"] in ("pass", "fail")]
    for way in WAYS:
        decisions = [f for r in rows for f in r["floors"].values()]
        out[way] = {
            "decisions": len(decisions),
            "reference_decided": len(decided),
            "wrong": sum(f["wrong"][way] for f in decided),
            "false_rejections": sum(f["wrong"][way] for f in decided if f["reference"] == "pass"),
            "false_keeps": sum(f["wrong"][way] for f in decided if f["reference"] == "fail"),
            "documents": sum(f["docs"][way] for f in decisions),
        }
    cpu = {k: sum(r["cpu_seconds"][k] for r in rows) for k in ("fixed", "adaptive")}
    out["fixed_point"]["cpu_seconds"] = out["fixed_interval"]["cpu_seconds"] = cpu["fixed"]
    out["adaptive"]["cpu_seconds"] = cpu["adaptive"]
    return out


if __name__ == "__main__":
    main()
