"""One SmolLM2 study with task floors, run two ways, its floor decisions checked against a
large re-measurement.

    nice -n 5 python benchmarks/task_floor_studies.py [--trials 6] [--fixed-docs 176] \
        [--first-docs 30] [--max-docs 240] [--reference-docs 400] [--threads 2] \
        [--out benchmarks/results/task-floor-studies-smollm2.json]

Two studies of the same spec (``ppl<2.0``, ``arc_easy>=90%``, ``hellaswag>=90%``, paired
intervals at ``--confidence``) differ only in how many search documents a trial reads:

- **fixed**: ``task_docs = --fixed-docs`` for every trial (``max_task_docs`` unset);
- **adaptive**: ``task_docs = --first-docs``, doubled while a floor is undecided, up to
  ``max_task_docs = --max-docs``.

Both use the random sampler with one seed and no warm start, so they propose the same
plans in the same order whatever their decisions were; the trials differ only in the
documents read (a trial dominated on size and perplexity by a feasible one is screened
before its tasks, and which trials are feasible depends on the decisions). Keep ratios
are drawn in ``[--min-keep, 1]`` over ``--groups`` groups of layers, where the floors'
edges are.

The studies are run through the library as ``frontier find`` runs them (context, warm
start off, :func:`frontier.search.find.optimize`), without the final re-measurement: that
is done here for every trial instead. Each distinct plan whose tasks either study measured
is re-measured on ``--reference-docs`` report documents per task, which neither search
read. A search decision is **wrong** when the reference decides the floor the other way
with its own interval at ``--confidence`` (undecided references count no decision wrong).
Costs: each study's process CPU seconds (set-up with its baselines, and its trials), and
the documents each decision read. Results are written after each stage; the studies are
SQLite files in ``--db-dir``, so an interrupted run resumes them (a study resumed
mid-way draws its remaining plans from another seed, as ``frontier find`` does, so its
plans then differ from the other study's after that point).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from task_floors import _metrics, _plain, _slim, is_wrong

from frontier import settings
from frontier.pruning.plan import Plan
from frontier.search.context import build_context
from frontier.search.find import open_study, optimize
from frontier.study.schema import ATTR_PLAN, ATTR_SEARCH
from frontier.study.spec import StudySpec
from objectives import create


def _study_spec(args: argparse.Namespace, way: str, db: Path) -> StudySpec:
    tasks = tuple(args.tasks.split(","))
    docs: dict[str, Any] = (
        {"task_docs": args.fixed_docs, "max_task_docs": None}
        if way == "fixed"
        else {"task_docs": args.first_docs, "max_task_docs": args.max_docs}
    )
    return StudySpec(
        model=args.model,
        slos=("ppl<2.0", *(f"{t}>={args.floor}" for t in tasks)),
        study=f"floors-{way}",
        storage=f"sqlite:///{db}",
        tasks=tasks,
        confidence=args.confidence,
        min_keep=args.min_keep,
        groups=args.groups,
        sampler="random",
        warm_start=False,
        trials=args.trials,
        seed=args.seed,
        threads=args.threads,
        report_points=0,
        **docs,
    )


def _run_study(spec: StudySpec, say: Any) -> tuple[Any, Any, dict[str, float]]:
    """Run the study; CPU seconds of its set-up (the calibration is a cache hit after the
    first study) and of its trials."""
    cpu = time.process_time()
    ctx = build_context(spec, progress=say)
    study = open_study(ctx)
    setup = time.process_time() - cpu
    optimize(ctx, study, trials=spec.trials, timeout=None)
    return ctx, study, {"setup": setup, "trials": time.process_time() - cpu - setup}


def _plan_key(row: dict[str, Any]) -> str:
    """The reference measurements' key: a trial's widths (both studies share plans)."""
    return ",".join(map(str, row["plan"]["widths"]))


def _decisions(ctx: Any, study: Any) -> list[dict[str, Any]]:
    """Every trial whose tasks were measured: its plan, figures and floor decisions."""
    rows = []
    floors = [s for s in ctx.slos if s.needs == "tasks"]
    for t in study.get_trials(deepcopy=False):
        rec = t.user_attrs.get(ATTR_SEARCH) or {}
        if "tasks" not in rec:
            continue
        metrics = _metrics(rec["tasks"], ctx.search_side)
        rows.append(
            {
                "number": t.number,
                "plan": t.user_attrs[ATTR_PLAN],
                "removed_mlp_fraction": 1.0 - float(rec["mlp_kept"]),
                "ppl_ratio": rec.get("ppl_ratio"),
                "tasks": _plain(_slim(rec["tasks"])),
                "keeps": {str(f): bool(f.satisfied(metrics)) for f in floors},
                "docs": {str(f): int(rec["tasks"][f.metric]["n_docs"]) for f in floors},
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tasks", default="arc_easy,hellaswag")
    ap.add_argument("--floor", default="90%")
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--min-keep", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fixed-docs", type=int, default=176)
    ap.add_argument("--first-docs", type=int, default=30)
    ap.add_argument("--max-docs", type=int, default=240)
    ap.add_argument("--reference-docs", type=int, default=400)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/task-floor-studies-smollm2.json")
    ap.add_argument("--db-dir", default="studies", help="where the two studies' SQLite files go")
    args = ap.parse_args()
    settings.set_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    say = lambda m: print(m, flush=True)  # noqa: E731
    results: dict[str, Any] = {"args": vars(args), "threads": torch.get_num_threads()}
    if out.exists():
        results = {**json.loads(out.read_text()), **results}
    ctx = None
    for way in ("fixed", "adaptive"):
        if way in results.get("studies", {}):
            say(f"== {way}: done earlier")
            continue
        spec = _study_spec(args, way, Path(args.db_dir) / f"{out.stem}-{way}.db")
        say(f"== study {spec.study}: {spec.trials} trials")
        ctx, study, cpu = _run_study(spec, say)
        results.setdefault("studies", {})[way] = {
            "spec": spec.to_dict(),
            "cpu_seconds": cpu,
            "ran": {
                state: sum(t.state.name == state for t in study.get_trials(deepcopy=False))
                for state in ("COMPLETE", "PRUNED", "FAIL")
            },
            "trials": _decisions(ctx, study),
        }
        out.write_text(json.dumps(results, indent=1))
    reference = results.setdefault("reference", {})
    floors = sorted(
        {f for s in results["studies"].values() for r in s["trials"] for f in r["keeps"]}
    )
    if ctx is None:  # both studies finished earlier: rebuild the operator they used
        ctx = build_context(_study_spec(args, "fixed", Path(args.db_dir) / f"{out.stem}-fixed.db"))
    ref = create(
        "tasks",
        tasks=list(ctx.spec.tasks),
        n_docs=args.reference_docs,
        role="report",
        confidence=args.confidence,
        seed=ctx.spec.seed,
    )
    ref.prepare(ctx.lm)
    results["reference_protocol"] = _plain(ref.protocol())
    for s in results["studies"].values():
        for row in s["trials"]:
            key = _plan_key(row)
            if key in reference:
                continue
            say(f"== reference: trial {row['number']} ({row['removed_mlp_fraction']:.1%} removed)")
            t = time.process_time()
            with ctx.pruner.pruned(Plan.from_dict(row["plan"])):
                details = ref.evaluate(ctx.lm).details
            reference[key] = {
                "tasks": _plain(_slim(details)),
                "cpu_seconds": time.process_time() - t,
            }
            out.write_text(json.dumps(results, indent=1))
    results["summary"] = _summary(results, floors)
    out.write_text(json.dumps(results, indent=1))
    say(json.dumps(results["summary"], indent=1))


def _summary(results: dict[str, Any], floors: list[str]) -> dict[str, Any]:
    from frontier.study.slo import parse_slos

    parsed = {str(f): f for f in parse_slos(floors, known_tasks=None)}
    summary: dict[str, Any] = {}
    for way, s in results["studies"].items():
        decisions = wrong = decided = false_rej = false_keep = docs = 0
        for row in s["trials"]:
            key = _plan_key(row)
            truth_m = _metrics(results["reference"][key]["tasks"], "estimate")
            row["reference"] = {}
            for name, kept in row["keeps"].items():
                truth = parsed[name].decision(truth_m)
                row["reference"][name] = truth
                decisions += 1
                docs += row["docs"][name]
                if truth not in ("pass", "fail"):
                    continue
                decided += 1
                bad = is_wrong(truth, kept)
                wrong += bad
                false_rej += bad and truth == "pass"
                false_keep += bad and truth == "fail"
        summary[way] = {
            "trials_with_tasks": len(s["trials"]),
            "decisions": decisions,
            "reference_decided": decided,
            "wrong": wrong,
            "false_rejections": false_rej,
            "false_keeps": false_keep,
            "documents": docs,
            "documents_per_decision": docs / decisions if decisions else None,
            "cpu_seconds": s["cpu_seconds"],
            "ran": s["ran"],
        }
    return summary


if __name__ == "__main__":
    main()
