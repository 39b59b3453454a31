"""Task floors decided on fixed and on adaptive document counts, against a large re-measurement.

    nice -n 5 python benchmarks/task_floors.py [--removed 0.15,0.25,...] [--threads 2] \
        [--fixed-docs 80,176] [--criterion obs] [--reuse EARLIER.json] \
        [--out benchmarks/results/task-floors-smollm2.json]

For each uniform plan (a study's operator: ``--criterion``, default the spec's, + refit),
the floors ``arc_easy>=90%`` and ``hellaswag>=90%`` are decided these ways on search
documents:

- **fixed, point** (``fixedN_point``): N documents per task for each N in
  ``--fixed-docs``, reject when the retention estimate is below the floor (how studies
  decided before paired intervals);
- **fixed, interval** (``fixedN_interval``): the same documents, reject only when the
  floor lies above the whole paired interval at ``--confidence`` (``confidence`` set,
  ``max_task_docs`` unset);
- **adaptive**: ``--first-docs`` documents, doubled while the floor is undecided, up to
  ``--max-docs`` (``max_task_docs``), rejected as in the interval rule.

A fixed count equal to the adaptive rule's mean documents per decision compares the two
at equal cost.

The reference is the same plan on ``--reference-docs`` report documents per task, which
neither search measurement reads. A search decision is **wrong** when the reference
decides the floor the other way with its own interval at ``--confidence``: a rejection of
a trial the reference passes, or a keep of one it fails. Where the reference itself is
undecided, no search decision is counted wrong. Costs are process CPU seconds of each
measurement (the documents each decision used are listed per plan).
Results are written after every plan, so an interrupted run keeps what finished.

``--reuse EARLIER.json`` reads every measurement whose protocol equals this run's from an
earlier run of the same plans (same model, operator and calibration) instead of measuring
it again. The first plan's reference is then measured anyway and must equal the stored
one figure for figure, or the run stops: it checks that the operator still builds the
same pruned models. What was reused is recorded in the output.
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
from frontier.pruning.plan import Plan
from frontier.search.context import build_operator, check_tasks
from frontier.study.slo import TaskScore, TrialMetrics, parse_slos
from frontier.study.spec import StudySpec
from objectives import create

RULES = ("point", "interval")


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


def _plain(x: Any) -> Any:
    """``x`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(x))


def is_wrong(reference: str, kept: bool) -> bool:
    """A search verdict the reference's own decision (pass, fail or undecided) reverses."""
    return (reference == "pass" and not kept) or (reference == "fail" and kept)


def _stored(earlier: dict[str, Any] | None, name: str, protocol: Any, removed: float) -> Any:
    """``(details, cpu seconds)`` of measurement ``name`` of the plan removing ``removed``
    in an earlier run, where that run used the same protocol; else None. Runs with one
    fixed count called its measurement ``fixed``."""
    if earlier is None:
        return None
    for key in (name, "fixed") if name.startswith("fixed") else (name,):
        if earlier["protocols"].get(key) != _plain(protocol):
            continue
        for row in earlier["plans_measured"]:
            if abs(row["removed_mlp_fraction"] - removed) < 1e-9 and key in row:
                return row[key], row["cpu_seconds"][key]
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--removed", default="0.15,0.25,0.3,0.35,0.45,0.6")
    ap.add_argument("--tasks", default="arc_easy,hellaswag")
    ap.add_argument("--floor", default="90%")
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--fixed-docs", default="80", help="comma-separated document counts")
    ap.add_argument("--first-docs", type=int, default=30)
    ap.add_argument("--max-docs", type=int, default=240)
    ap.add_argument("--reference-docs", type=int, default=400)
    ap.add_argument("--criterion", default=None, help="default: the study spec's")
    ap.add_argument("--reuse", default=None, help="an earlier run's JSON (see the docstring)")
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

    fixed_docs = [int(x) for x in args.fixed_docs.split(",") if x]
    lm = load_model(args.model)
    spec = StudySpec(model=args.model)
    if args.criterion:
        spec = dataclasses.replace(spec, criterion=args.criterion)
    pruner = build_operator(spec, lm, say=say)
    plans = f"uniform, operator {pruner.name} ({spec.calibration_tokens} calibration tokens)"
    earlier = json.loads(Path(args.reuse).read_text()) if args.reuse else None
    if earlier is not None and earlier["plans"] != plans:
        raise SystemExit(f"--reuse: {args.reuse} measured {earlier['plans']!r}, not {plans!r}")
    common = {"tasks": tasks, "confidence": args.confidence, "seed": spec.seed}
    objectives = {
        **{f"fixed{n}": create("tasks", n_docs=n, role="search", **common) for n in fixed_docs},
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
        "plans": plans,
        "floors": [str(f) for f in floors],
        "confidence": args.confidence,
        "protocols": {name: obj.protocol() for name, obj in objectives.items()},
        "threads": torch.get_num_threads(),
        "plans_measured": [],
    }
    if earlier is not None:
        results["reused"] = {"from": args.reuse, "measurements": [], "check": None}
    for i, removed in enumerate(float(x) for x in args.removed.split(",")):
        plan = Plan.uniform(1.0 - removed, pruner.full)
        say(f"== {plan.describe()}")
        row: dict[str, Any] = {
            "removed_mlp_fraction": plan.removed_fraction,
            "cpu_seconds": {},
            "floors": {},
        }
        with pruner.pruned(plan):
            for name, obj in objectives.items():
                stored = _stored(earlier, name, results["protocols"][name], plan.removed_fraction)
                if stored is not None and not (i == 0 and name == "reference"):
                    row[name], row["cpu_seconds"][name] = stored
                    results["reused"]["measurements"].append([plan.removed_fraction, name])
                    say(f"{name}: reused")
                    continue
                details, row["cpu_seconds"][name] = _measure(obj, lm)
                row[name] = _plain(_slim(details))
                if stored is not None:  # the first plan's reference, measured again
                    same = row[name] == stored[0]
                    results["reused"]["check"] = {"reference": row[name], "stored": stored[0]}
                    if not same:
                        out_path.write_text(json.dumps(results, indent=1))
                        raise SystemExit(
                            f"--reuse: the first plan's reference differs from {args.reuse}: "
                            "the operator builds other models now; run without --reuse"
                        )
                    say("reference: equal to the stored one")
        ways = {
            **{
                f"fixed{n}_{rule}": (row[f"fixed{n}"], side)
                for n in fixed_docs
                for rule, side in zip(RULES, ("estimate", "optimistic"), strict=True)
            },
            "adaptive": (row["adaptive"], "optimistic"),
        }
        for floor in floors:
            reference = row["reference"]
            truth = floor.satisfied(_metrics(reference, "estimate"))
            truth_ci = floor.decision(_metrics(reference, "estimate"))
            keeps = {w: floor.satisfied(_metrics(d, side)) for w, (d, side) in ways.items()}
            docs = {w: d[floor.metric]["n_docs"] for w, (d, _side) in ways.items()}
            row["floors"][str(floor)] = {
                "reference_estimate": truth,
                "reference": truth_ci,
                "search_keeps": keeps,
                "docs": docs,
                "wrong": {way: is_wrong(truth_ci, bool(kept)) for way, kept in keeps.items()},
            }
        results["plans_measured"].append(row)
        results["summary"] = _summary(results["plans_measured"], fixed_docs)
        out_path.write_text(json.dumps(results, indent=1))
        say(json.dumps(row["floors"]))
    say(json.dumps(results["summary"], indent=1))


def _summary(rows: list[dict[str, Any]], fixed_docs: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    decided = [f for r in rows for f in r["floors"].values() if f["reference"] in ("pass", "fail")]
    measured = {f"fixed{n}_{rule}": f"fixed{n}" for n in fixed_docs for rule in RULES}
    measured["adaptive"] = "adaptive"
    for way, name in measured.items():
        decisions = [f for r in rows for f in r["floors"].values()]
        out[way] = {
            "decisions": len(decisions),
            "reference_decided": len(decided),
            "wrong": sum(f["wrong"][way] for f in decided),
            "false_rejections": sum(f["wrong"][way] for f in decided if f["reference"] == "pass"),
            "false_keeps": sum(f["wrong"][way] for f in decided if f["reference"] == "fail"),
            "documents": sum(f["docs"][way] for f in decisions),
            "cpu_seconds": sum(r["cpu_seconds"][name] for r in rows),
        }
    return out


if __name__ == "__main__":
    main()
