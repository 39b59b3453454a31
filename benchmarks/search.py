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
``--budgets ''`` it does only that. ``--family NAME`` (repeatable) makes each study
bisect those allocation families after the uniform plan (``frontier find --family``).

``--plans`` compares the allocation families (``frontier.search.families``) directly on
the study's operator, without studies: the layer probe, the uniform keep bisected on the
search text, then each family's mean keep bisected the same way (to 0.01, from the
uniform limit down by 0.1), each result re-measured held out and, where it fails there,
raised a keep step at a time (0.01, at most four) until it passes, as the final stage
would choose among plans it has; and the issue's hand-made plans, held out. Cost curves
both on the energy-share scale and probe-calibrated. Prints per model and family: MLP
removed at the held-out-passing point, its held-out ratio, the ratio of MLP removed to
the uniform plan's, and wall time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

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
    ap.add_argument("--family", action="append", default=[])
    ap.add_argument("--plans", action="store_true")
    ap.add_argument("--report-tokens", type=int, default=None)
    args = ap.parse_args()
    settings.set_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.plans:
        for model in args.models.split(","):
            slo_spec = StudySpec(
                model=model, slos=(args.slo,), report_tokens=args.report_tokens or 8192
            )
            compare_families(slo_spec, args.family or None)
        return
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
            families=tuple(args.family),
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


# the hand-made plans (#32): critical layers whole or wider, the rest at 0.45
HAND_MADE = {
    "smollm2-135m": ({0: 1.0, 11: 1.0, 29: 1.0}, 0.45),
    "gemma3-270m": ({0: 0.8, 1: 0.8, 2: 0.8, 3: 0.8, 4: 0.8}, 0.45),
}
RAISE_STEP, RAISES = 0.01, 4


def compare_families(spec: StudySpec, names: list[str] | None) -> None:
    """Every allocation family against the bisected uniform plan, on the study's operator."""
    from frontier.pruning.plan import Plan
    from frontier.search.context import build_context
    from frontier.search.costs import layer_costs
    from frontier.search.families import FAMILIES, AllocationInfo, bisect_variants, get_family
    from frontier.search.probe import probe_layers
    from frontier.search.trial import measured_metrics
    from frontier.search.uniform import bisect_uniform, quality_slos

    t0 = time.perf_counter()
    ctx = build_context(spec, progress=lambda m: print(f"  [{m}]", flush=True))
    print(f"{spec.model}: context built in {time.perf_counter() - t0:.0f} s", flush=True)
    quality = quality_slos(ctx.slos)
    held = ctx.report_objectives()["ppl"]
    evals = {"search": 0, "held": 0}

    def search_check(plan: Plan) -> tuple[bool, float]:
        evals["search"] += 1
        with ctx.pruner.pruned(plan):
            size = ctx.size.evaluate(ctx.lm)
            cheap = ctx.cheap.evaluate(ctx.lm)
        metrics = measured_metrics(size, cheap, None)
        return all((q.violation(metrics) or 0.0) <= 0 for q in quality), float(cheap.value)

    def held_out(plan: Plan) -> float:
        evals["held"] += 1
        with ctx.pruner.pruned(plan):
            return float(held.evaluate(ctx.lm).value)

    t = time.perf_counter()
    probe = probe_layers(ctx)
    probe_s = time.perf_counter() - t
    order = sorted(range(len(probe.values)), key=lambda i: -probe.values[i])
    print(
        f"probe ({probe_s:.0f} s): critical {probe.critical}; costliest "
        + ", ".join(f"{i}: {probe.values[i]:.3g}" for i in order[:8]),
        flush=True,
    )
    space = ctx.space
    energy = layer_costs(ctx.scores)
    removal = probe.removal_costs()
    calibrated = None if energy is None else energy.calibrated(removal, "probe")
    infos = {
        "energy": AllocationInfo(
            space.full, space.lo, space.hi, space.multiple, energy, probe.critical, removal
        ),
        "probe": AllocationInfo(
            space.full, space.lo, space.hi, space.multiple, calibrated, probe.critical, removal
        ),
    }
    rows: list[tuple[str, Plan | None, float | None, float, str]] = []

    def settle(label: str, keep: float | None, make: Any, started: float) -> None:
        """Held out from the search-time limit upward, as the final stage would."""
        if keep is None:
            rows.append((label, None, None, time.perf_counter() - started, "no feasible plan"))
            return
        note = ""
        for k in range(RAISES + 1):
            plan = make(min(keep + k * RAISE_STEP, 1.0))
            ratio = held_out(plan)
            if ratio < _bound(spec):
                note = f"raised {k} step(s)" if k else ""
                break
            note = f"fails held out, raised {k} step(s)"
        rows.append((label, plan, ratio, time.perf_counter() - started, note))
        print(_plan_row(rows[-1]), flush=True)

    t = time.perf_counter()
    uniform = bisect_uniform(
        space.full,
        search_check,
        lo=space.lo,
        hi=1.0,
        tol=0.01,
        multiple=space.multiple,
        top_feasible=True,
    )
    u_keep = None if uniform.best is None else uniform.best.keep
    settle("uniform", u_keep, lambda k: get_family("uniform").plan(k, infos["energy"]), t)
    if u_keep is None:
        return
    for name in names or sorted(FAMILIES):
        if name == "uniform":
            continue
        family = get_family(name)
        scales = ("energy", "probe") if family.needs_costs else ("energy",)
        for scale in scales:
            info = infos[scale]
            label = f"{name} ({scale})" if family.needs_costs else name
            if family.available(info) is not None:
                rows.append((label, None, None, 0.0, str(family.available(info))))
                continue

            def limit_of(
                variant: str,
                at: AllocationInfo,
                fn: Any = family.plan,
                base: str = name,
                shown: str = label,
            ) -> float | None:
                t = time.perf_counter()

                def make(k: float) -> Plan:
                    return fn(k, at)

                found = bisect_uniform(
                    space.full,
                    search_check,
                    lo=max(u_keep - 0.1, space.lo),
                    hi=u_keep,
                    tol=0.01,
                    multiple=space.multiple,
                    plan_at=make,
                )
                keep = None if found.best is None else found.best.keep
                settle(shown if variant == base else variant, keep, make, t)
                return None if keep is None else make(keep).kept_fraction

            bisect_variants(family, info, limit_of)
    hand = HAND_MADE.get(spec.model)
    if hand is not None:
        t = time.perf_counter()
        fixed, rest = hand
        ratios = [fixed.get(i, rest) for i in range(len(space.full))]
        plan = Plan.from_ratios(ratios, space.full, multiple=space.multiple, floor=space.multiple)
        rows.append(("hand-made", plan, held_out(plan), time.perf_counter() - t, "issue #32"))
    print(
        f"\n{spec.model}, SLO {spec.slos[0]}, held out: {spec.report_tokens} tokens of the "
        f"report part; probe {probe_s:.0f} s; {evals['search']} search and {evals['held']} "
        f"held-out evaluations; {time.perf_counter() - t0:.0f} s in all"
    )
    base = rows[0][1].removed_fraction if rows and rows[0][1] is not None else None
    print(
        f"{'family':26s} {'MLP removed':>11s} {'held-out':>9s} {'x uniform':>9s} "
        f"{'wall s':>7s}  note"
    )
    for r in rows:
        print(_plan_row(r, base))
    for label, shown, _ratio, _wall, _note in rows:
        if shown is not None:
            print(f"  {label}: widths {list(shown.widths)}")


def _bound(spec: StudySpec) -> float:
    from frontier.study.slo import parse_slos

    for s in parse_slos(spec.slos):
        if s.metric == "ppl":
            return s.threshold
    return float("inf")


def _plan_row(r: tuple[Any, ...], base: float | None = None) -> str:
    label, plan, ratio, wall, note = r
    if plan is None:
        return f"{label:26s} {'–':>11s} {'–':>9s} {'–':>9s} {wall:7.0f}  {note}"
    gain = "–" if not base else f"{plan.removed_fraction / base:.3f}"
    return (
        f"{label:26s} {100 * plan.removed_fraction:10.1f}% {ratio:9.3f} {gain:>9s} "
        f"{wall:7.0f}  {note}"
    )


if __name__ == "__main__":
    main()
