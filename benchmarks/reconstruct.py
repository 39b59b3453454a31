"""Local reconstruction against the refit alone and the global repair, side by side.

    nice -n 5 python benchmarks/reconstruct.py [--model smollm2-135m] [--removed 0.55] \
        [--budgets 4,9] [--inputs pruned,dense] [--global-minutes 9] [--chain 4:20] \
        [--threads 2] [--out benchmarks/results/reconstruct.json]

For each MLP fraction removed (a uniform plan, :meth:`frontier.pruning.plan.Plan.uniform`,
applied by a study's default pruning operator: greedy OBS scores and the ridge refit on
the default calibration), it measures the held-out perplexity ratio (the ``ppl``
objective, ``role="report"``: the report part of the Wikipedia sample, ``--report-tokens``
tokens in 1,024-token windows, as ``benchmarks/repair.py``):

- after the refit only;
- after local reconstruction (:func:`frontier.reconstruct.reconstruct`), for every
  ``--inputs`` and every CPU-minute budget in ``--budgets``, each a run of its own;
- after global distillation (:func:`frontier.repair.repair`) for ``--global-minutes``
  (default: the largest local budget);
- with ``--chain L:G``, local reconstruction for L CPU-minutes followed by G of repair.

Costs are process CPU time (both threads counted; the machine is shared, so wall time says
little). Results are written after every run, so an interrupted benchmark keeps them.
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
from frontier.reconstruct import ReconstructConfig, reconstruct
from frontier.repair import PlainReporter, RepairConfig, repair, repair_data
from frontier.search.context import build_operator
from frontier.study.spec import StudySpec
from objectives import create


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--removed", default="0.55", help="fractions of MLP removed, comma-separated")
    ap.add_argument("--budgets", default="4,9", help="local CPU-minute budgets, comma-separated")
    ap.add_argument(
        "--inputs",
        default="pruned",
        help="pruned, dense, stream (pruned inputs fitted to the unpruned layer output), "
        "comma-separated",
    )
    ap.add_argument("--global-minutes", type=float, default=None, help="0: no global run")
    ap.add_argument("--chain", default="", help="L:G, local then global CPU-minutes")
    ap.add_argument("--chain-inputs", default="pruned", help="the chain's local variant")
    ap.add_argument(
        "--lrs",
        default=str(ReconstructConfig.lr),
        help="local learning rates, comma-separated: all run at the first budget, the best "
        "(held-out ratio) at the others",
    )
    ap.add_argument("--steps", type=int, default=ReconstructConfig.steps)
    ap.add_argument(
        "--backoffs",
        type=int,
        default=ReconstructConfig.backoffs,
        help="local: times a layer may start again at a third of the rate (0: never)",
    )
    ap.add_argument("--batch-tokens", type=int, default=ReconstructConfig.batch_tokens)
    ap.add_argument("--train-tokens", type=int, default=ReconstructConfig.train_tokens)
    ap.add_argument("--repair-lr", type=float, default=3e-4)
    ap.add_argument("--report-tokens", type=int, default=16384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/reconstruct.json")
    args = ap.parse_args()
    settings.set_threads(args.threads)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    say = lambda m: print(m, flush=True)  # noqa: E731

    lm = load_model(args.model)
    spec = StudySpec(model=args.model)
    op = build_operator(spec, lm, say=say)
    ppl = create("ppl", role="report", n_tokens=args.report_tokens)
    ppl.prepare(lm)
    budgets = _floats(args.budgets)
    global_minutes = (
        max(budgets, default=0.0) if args.global_minutes is None else args.global_minutes
    )
    chain = tuple(float(x) for x in args.chain.split(":")) if args.chain else None
    lrs = _floats(args.lrs)
    local = ReconstructConfig(
        lr=lrs[0],
        steps=args.steps,
        batch_tokens=args.batch_tokens,
        train_tokens=args.train_tokens,
        backoffs=args.backoffs,
    )
    local_data = repair_data(
        local.text,
        lm.tokenizer,
        seq_len=local.seq_len,
        heldout_tokens=local.heldout_tokens,
        heldout_fraction=local.heldout_fraction,
        max_train_tokens=local.train_tokens,
    )
    rcfg = RepairConfig(
        steps=150,
        batch_windows=2,
        seq_len=512,
        lr=args.repair_lr,
        heldout_tokens=2048,
        eval_every=20,
        warmup_steps=5,
        cpu_minutes=global_minutes or None,
    )
    global_data = repair_data(
        "wiki-sample",
        lm.tokenizer,
        seq_len=512,
        heldout_tokens=rcfg.heldout_tokens,
        max_train_tokens=rcfg.steps * rcfg.batch_windows * rcfg.seq_len,
    )
    results: dict[str, Any] = {
        "model": args.model,
        "operator": op.describe(),
        "ppl_protocol": ppl.protocol(),
        "local_config": local.to_dict(),
        "local_data": local_data.describe(),
        "repair_config": rcfg.to_dict(),
        "threads": torch.get_num_threads(),
        "points": [],
    }

    def ratio() -> tuple[float, float]:
        t = time.process_time()
        value = ppl.evaluate(lm).value
        return value, (time.process_time() - t) / 60

    def save() -> None:
        out_path.write_text(json.dumps(results, indent=1))

    for removed in _floats(args.removed):
        plan = Plan.uniform(1.0 - removed, op.full)
        say(f"== {plan.describe()}")
        point: dict[str, Any] = {"removed_mlp_fraction": plan.removed_fraction, "runs": []}
        results["points"].append(point)
        with op.pruned(plan):
            value, ev = ratio()
        point["runs"].append({"step": "refit only", "ppl_ratio": value, "cpu_minutes": 0.0})
        say(f"refit only: held-out ratio {value:.3f} (eval {ev:.1f} CPU-min)")
        save()
        best_lr: dict[str, float] = {}
        for inputs in args.inputs.split(","):
            tried: dict[float, float] = {}
            runs = [(budgets[0], lr) for lr in lrs] if budgets else []
            for budget, lr in runs + [(b, None) for b in budgets[1:]]:
                if lr is None:
                    lr = min(tried, key=lambda k: tried[k])
                    best_lr[inputs] = lr
                cfg = _replace(local, **_variant(inputs), cpu_minutes=budget, lr=lr)
                res = reconstruct(op, plan, local_data, cfg, progress=say)
                value, ev = ratio()
                op.restore()
                if budget == budgets[0]:
                    tried[lr] = value
                run = {
                    "step": f"local ({inputs} inputs, lr {lr:g})",
                    "budget_cpu_minutes": budget,
                    "lr": lr,
                    "cpu_minutes": res.cpu_seconds / 60,
                    "ppl_ratio": value,
                    "heldout_error_before": res.heldout_before,
                    "heldout_error_after": res.heldout_after,
                    "steps_run": sum(f.steps_run for f in res.layers),
                    "layers": [f.to_dict() for f in res.layers],
                }
                point["runs"].append(run)
                say(
                    f"local {inputs} {budget} CPU-min: held-out ratio {value:.3f} "
                    f"({res.cpu_seconds / 60:.1f} CPU-min)"
                )
                save()
        if global_minutes:
            value, minutes, how = _global(op, plan, global_data, rcfg, None, ratio)
            point["runs"].append(
                {"step": "global (repair)", "ppl_ratio": value, "cpu_minutes": minutes, **how}
            )
            say(f"global {global_minutes} CPU-min: held-out ratio {value:.3f}")
            save()
        if chain is not None:
            lr = best_lr.get(args.chain_inputs, lrs[0])
            cfg = _replace(local, **_variant(args.chain_inputs), cpu_minutes=chain[0], lr=lr)
            res = reconstruct(op, plan, local_data, cfg, progress=say)
            value_local, _ = ratio()
            op.restore()
            g = _replace(rcfg, cpu_minutes=chain[1])
            value, minutes, how = _global(op, plan, global_data, g, res.modules, ratio)
            point["runs"].append(
                {
                    "step": f"local ({args.chain_inputs}) then global",
                    "ppl_ratio_after_local": value_local,
                    "ppl_ratio": value,
                    "cpu_minutes": res.cpu_seconds / 60 + minutes,
                    "local_cpu_minutes": res.cpu_seconds / 60,
                    **how,
                }
            )
            say(f"local {chain[0]} + global {chain[1]} CPU-min: held-out ratio {value:.3f}")
            save()
    _table(results)


def _variant(name: str) -> dict[str, str]:
    """``stream``: the pruned model's inputs, fitted to the unpruned layer's output."""
    return {"inputs": "pruned", "target": "stream"} if name == "stream" else {"inputs": name}


def _replace(cfg: Any, **kw: Any) -> Any:
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def _global(
    op: Any, plan: Any, data: Any, cfg: Any, start: Any, ratio: Any
) -> tuple[float, float, dict[str, Any]]:
    """The held-out ratio after the repair, its CPU minutes, and how it ran."""
    say = PlainReporter(lambda m: print(m, flush=True), every=10)
    result = repair(op, plan, data, cfg, reporter=say, start=start)
    value, _ = ratio()
    op.restore()
    how = {
        "repair_cpu_minutes": result.cpu_seconds / 60,
        "repair_steps_run": result.steps_run,
        "repair_kept_step": result.kept_step,
        "repair_stop_reason": result.stop_reason,
    }
    return value, result.cpu_seconds / 60, how


def _table(results: dict[str, Any]) -> None:
    print("\n| MLP removed | step | CPU-min | held-out ppl ratio |")
    print("|---|---|---|---|")
    for p in results["points"]:
        for r in p["runs"]:
            step = r["step"] + (
                f" @ {r['budget_cpu_minutes']:g}" if "budget_cpu_minutes" in r else ""
            )
            print(
                f"| {100 * p['removed_mlp_fraction']:.1f}% | {step} | {r['cpu_minutes']:.2f} "
                f"| {r['ppl_ratio']:.3f} |"
            )


if __name__ == "__main__":
    main()
