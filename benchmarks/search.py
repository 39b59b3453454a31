"""Search benchmark: the found frontier against uniform and global-threshold plans.

    python benchmarks/search.py [--model smollm2-135m] [--slo ppl<2.0] [--trials 80]
                                [--report-points 12] [--no-bisect]

After the study (with the spec's operator, the new default unless --criterion and
--no-refit say otherwise), the best uniform plan is bisected on the keep ratio (to
0.005) on the same search-time text for the study's operator and for the old one
(activation scores, no refit), side by side in the same process, and each bisected plan
is re-measured on the held-out report text, as the chosen point is.

One study, one process: the warm-start plans (a ladder of uniform keep ratios and
FLAP-style global-threshold plans) run as the study's first trials on the same data as
the searched ones, so the comparison is side by side. Prints the MLP parameters removed
at the best feasible point of each kind (search-time figures, same SLO), the chosen
point (re-measured on held-out text), trials per hour, and the share of trial time spent
in the model's forward passes.
"""

from __future__ import annotations

import argparse
import tempfile

import optuna

from frontier import settings
from frontier.search.find import find
from frontier.search.spec import StudySpec
from frontier.study.read import chosen_trial, read_trials


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--slo", default="ppl<2.0")
    ap.add_argument("--trials", type=int, default=80)
    ap.add_argument("--groups", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--storage", default=None)
    ap.add_argument("--report-points", type=int, default=12)
    ap.add_argument("--criterion", default=None)
    ap.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--bisect", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    settings.set_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = args.storage or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    spec = StudySpec(
        model=args.model,
        slos=(args.slo,),
        trials=args.trials,
        groups=args.groups,
        study="bench",
        storage=storage,
        report_points=args.report_points,
        **{
            k: v for k, v in (("criterion", args.criterion), ("refit", args.refit)) if v is not None
        },
    )
    result = find(spec)
    study = result.study
    done = [t for t in read_trials(study) if t.state == "complete"]
    best: dict[str, float] = {}
    for t in done:
        if not t.feasible or t.mlp_removed is None:
            continue
        kind = (t.warm_start or "searched").split("-")[0]
        best[kind] = max(best.get(kind, 0.0), t.mlp_removed)
    timing = [t.timing for t in done]
    total = sum(x["total"] for x in timing)
    forward = sum(x["forward"] for x in timing)
    print(
        f"model {spec.model}, SLO {args.slo}, {len(done)} trials "
        f"({spec.search_tokens} search tokens), groups {spec.groups or 'per layer'}"
    )
    for kind in ("uniform", "global", "searched"):
        print(f"best feasible {kind:9s} {100 * best.get(kind, 0.0):6.1f}% of MLP params removed")
    if best.get("uniform"):
        print(
            f"search / uniform          {best.get('searched', 0) / best['uniform']:6.2f}x "
            "(goal >= 1.3x)"
        )
    chosen = chosen_trial(study)
    if chosen is not None and chosen.final_point is not None:
        print(
            f"chosen point              trial {chosen.number}: "
            f"{100 * chosen.final_point.mlp_removed:.1f}% MLP removed, held-out ppl ratio "
            f"{chosen.final_point.ppl_ratio}"
        )
    else:
        print("chosen point              none meets the SLO on held-out text")
    print(f"trials per hour           {3600 * len(done) / total:8.1f}")
    print(f"forward-pass share        {100 * forward / total:8.1f}% of trial time (goal >= 90%)")
    print(f"wall time                 {result.seconds:8.1f} s")
    if args.bisect:
        _bisected(spec)


def _bisected(spec: StudySpec) -> None:
    """Bisected uniform plans for the spec's operator and the old one, held-out figures."""
    import time

    from frontier.search.context import build_context, build_operator
    from frontier.search.uniform import uniform_baseline

    ctx = build_context(spec)
    operators = {ctx.pruner.name: ctx.pruner}
    old = spec.replace(criterion="activation", refit=False, compensate=False)
    old_op = build_operator(old, ctx.lm)
    operators.setdefault(old_op.name, old_op)
    report = ctx.report_objectives()["ppl"]
    removed = {}
    for name, op in operators.items():
        t = time.perf_counter()
        ctx.pruner = op
        found = uniform_baseline(ctx, tol=0.005)
        if found.best is None:
            print(f"bisected uniform ({name}): even keeping everything misses the SLO")
            continue
        with op.pruned(found.best.plan):
            held = report.evaluate(ctx.lm)
        removed[name] = found.best.plan.removed_fraction
        print(
            f"bisected uniform ({name:16s}) keep {found.best.keep:.4f}: "
            f"{100 * found.best.plan.removed_fraction:5.1f}% MLP removed, search ratio "
            f"{found.best.measured['value']:.3f}, held-out ratio {held.value:.3f} "
            f"({len({p.plan.widths for p in found.points})} plans, "
            f"{time.perf_counter() - t:.0f} s)"
        )
    if len(removed) == 2:
        new, old_name = list(removed)
        print(f"bisected uniform, {new} / {old_name}: {removed[new] / removed[old_name]:.2f}x")


if __name__ == "__main__":
    main()
