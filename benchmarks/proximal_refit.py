"""The refit's two forms, side by side: damped toward zero (today's ridge) or toward the
unpruned columns (proximal, OBS's form), on the held-out perplexity ratio; the proximal
refit both with today's greedy ranking and with the proximal greedy's
(``obs-greedy-proximal``).

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

    def scores_of(criterion: str) -> Any:
        return calibrate(
            lm,
            criterion,
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
    configs = [
        ("ridge", spec.criterion, False),
        ("proximal", spec.criterion, True),
        ("proximal, proximal greedy", "obs-greedy-proximal", True),
    ]
    for form, criterion, proximal in configs:
        t = time.process_time()
        scores = scores_of(criterion)
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
            "criterion": criterion,
            "alpha": op.describe()["alpha"],
            "setup_cpu_minutes": setup,
            "points": rows,
        }
        del op
        Path(args.out).write_text(json.dumps(results, indent=1))
    forms = results["forms"]
    print("\n| MLP removed | " + " | ".join(forms) + " |")
    print("|---|" + "---|" * len(forms))
    for i, keep in enumerate(keeps):
        removed = forms["ridge"]["points"][i]["removed"]
        cells = " | ".join(f"{f['points'][i]['ppl_ratio']:.3f}" for f in forms.values())
        print(f"| {100 * removed:.1f}% (keep {keep}) | {cells} |")


if __name__ == "__main__":
    main()
