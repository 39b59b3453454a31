"""Search benchmark: the chosen point against the bisected uniform plan, at two budgets.

    python benchmarks/search.py [--models smollm2-135m,gemma3-270m] [--slo ppl<2.0]
                                [--budgets 30,100] [--groups 10] [--report-points 4]
                                [--sampler boundary] [--compare-operators]

For each model, one study under the SLO runs to the first budget, is finalised (its
Pareto points re-measured on held-out text, the chosen point among them), then resumed
to the next budget and finalised again, so every budget's figures come from the same
study, as a user who asks for more trials gets them. Each study opens by bisecting the
uniform keep ratio at the SLO with its own trials (to 0.01; see
``frontier.search.uniform``), so the baseline is measured on the same text, with the
same operator, in the same process; it is re-measured held out like the chosen point.

Prints per model and budget: MLP parameters removed at the chosen point and at the
bisected uniform plan (held-out figures), their ratio, the held-out ppl ratios, and
the wall time (search and final re-measurement, cumulative).

``--compare-operators`` also bisects (to 0.005) the uniform plan of the study's operator
and of the old one (activation scores, no refit) side by side, outside the study; with
``--budgets ''`` it does only that.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import optuna

from frontier import settings
from frontier.search.find import find
from frontier.study.read import read_summary
from frontier.study.spec import StudySpec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--slo", default="ppl<2.0")
    ap.add_argument("--budgets", default="30,100")
    ap.add_argument("--groups", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--report-points", type=int, default=4)
    ap.add_argument("--sampler", default="boundary")
    ap.add_argument("--criterion", default=None)
    ap.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--calibration-tokens", type=int, default=None)
    ap.add_argument("--compare-operators", action="store_true")
    args = ap.parse_args()
    settings.set_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budgets = [int(b) for b in args.budgets.split(",") if b]  # none: --compare-operators only
    rows = []
    for model in args.models.split(","):
        storage = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
        spec = StudySpec(
            model=model,
            slos=(args.slo,),
            trials=budgets[0] if budgets else 1,
            groups=args.groups,
            study=f"bench-{model}",
            storage=storage,
            report_points=args.report_points,
            sampler=args.sampler,
            **{
                k: v
                for k, v in (
                    ("criterion", args.criterion),
                    ("refit", args.refit),
                    ("calibration_tokens", args.calibration_tokens),
                )
                if v is not None
            },
        )
        start = time.perf_counter()
        for budget in budgets:
            result = find(spec.replace(trials=budget))
            rows.append(_row(model, budget, result.study, time.perf_counter() - start))
            print(_format(rows[-1]), flush=True)
        if args.compare_operators:
            _bisected(spec)
    print(f"\nSLO {args.slo}, sampler {args.sampler}, groups {args.groups}; held-out figures")
    print(
        f"{'model':14s} {'trials':>6s} {'chosen removed':>15s} {'(ratio)':>8s} "
        f"{'uniform removed':>16s} {'(ratio)':>8s} {'chosen/uniform':>15s} {'wall s':>8s}"
    )
    for r in rows:
        print(_format(r))


def _row(model: str, budget: int, study: optuna.Study, wall: float) -> dict[str, object]:
    summary = read_summary(study)
    chosen, uniform = summary.chosen, summary.uniform
    return {
        "model": model,
        "trials": budget,
        "chosen": chosen,
        "uniform": uniform,
        "uniform_keep": summary.uniform_limit.get("keep"),
        "gain": summary.gain_over_uniform(),
        "wall": wall,
    }


def _format(r: dict[str, object]) -> str:
    def pct(p: object) -> str:
        return "–" if p is None else f"{100 * p.mlp_removed:.1f}%"  # type: ignore[attr-defined]

    def ratio(p: object) -> str:
        v = None if p is None else p.ppl_ratio  # type: ignore[attr-defined]
        return "–" if v is None else f"{v:.3f}"

    gain = r["gain"]
    return (
        f"{r['model']!s:14s} {r['trials']!s:>6s} {pct(r['chosen']):>15s} "
        f"{ratio(r['chosen']):>8s} {pct(r['uniform']):>16s} {ratio(r['uniform']):>8s} "
        f"{('–' if gain is None else f'{gain:.2f}x'):>15s} {r['wall']:8.0f}"
    )


def _bisected(spec: StudySpec) -> None:
    """Bisected uniform plans for the spec's operator and the old one, held-out figures."""
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
