"""The refit's two forms, side by side: damped toward zero (today's ridge) or toward the
unpruned columns (proximal, OBS's form), on the held-out perplexity ratio.

    nice -n 5 python benchmarks/proximal_refit.py [--model smollm2-135m] \
        [--keeps 0.8,0.7,0.6,0.5] [--threads 2] [--out benchmarks/results/proximal.json]

Uniform plans (:meth:`frontier.pruning.plan.Plan.uniform`), a study's default criterion
and calibration (the cached greedy OBS scores and Gram matrices), each form's own ridge
strengths chosen on the held-out calibration windows (:func:`cached_alphas`); the held-out
ratio is the ``ppl`` objective with ``role="report"`` (the report part of the Wikipedia
sample, ``--report-tokens`` tokens in 1,024-token windows), as ``benchmarks/repair.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from frontier import settings
from frontier.importance import calibrate
from frontier.models import load_model
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.study.spec import StudySpec
from objectives import create


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--keeps", default="0.8,0.7,0.6,0.5")
    ap.add_argument("--report-tokens", type=int, default=16384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/proximal.json")
    args = ap.parse_args()
    settings.set_threads(args.threads)
    say = lambda m: print(m, flush=True)  # noqa: E731
    lm = load_model(args.model)
    spec = StudySpec(model=args.model)
    scores = calibrate(
        lm,
        spec.criterion,
        text=spec.calibration_text,
        n_tokens=spec.calibration_tokens,
        seq_len=spec.calibration_seq_len,
        grams=True,
        progress=say,
    )
    ppl = create("ppl", role="report", n_tokens=args.report_tokens)
    ppl.prepare(lm)
    keeps = [float(k) for k in args.keeps.split(",") if k]
    results: dict[str, Any] = {
        "model": args.model,
        "criterion": spec.criterion,
        "calibration_tokens": spec.calibration_tokens,
        "ppl_protocol": ppl.protocol(),
        "forms": {},
    }
    for proximal in (False, True):
        form = "proximal" if proximal else "ridge"
        t = time.process_time()
        op = PruningOperator.for_model(lm, scores, refit=True, proximal=proximal, progress=say)
        setup = (time.process_time() - t) / 60
        rows = []
        for keep in keeps:
            plan = Plan.uniform(keep, op.full)
            with op.pruned(plan):
                value = ppl.evaluate(lm).value
            rows.append({"keep": keep, "removed": plan.removed_fraction, "ppl_ratio": value})
            say(f"{form}: keep {keep}: held-out ratio {value:.3f}")
        results["forms"][form] = {
            "alpha": op.describe()["alpha"],
            "setup_cpu_minutes": setup,
            "points": rows,
        }
        del op
        Path(args.out).write_text(json.dumps(results, indent=1))
    print("\n| MLP removed | ridge (today) | proximal |")
    print("|---|---|---|")
    ridge, prox = results["forms"]["ridge"]["points"], results["forms"]["proximal"]["points"]
    for r, p in zip(ridge, prox, strict=True):
        print(f"| {100 * r['removed']:.1f}% | {r['ppl_ratio']:.3f} | {p['ppl_ratio']:.3f} |")


if __name__ == "__main__":
    main()
