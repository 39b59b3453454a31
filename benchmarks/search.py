"""Search benchmark: the found frontier against uniform and global-threshold plans.

    python benchmarks/search.py [--model smollm2-135m] [--slo ppl<2.0] [--trials 80]

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


if __name__ == "__main__":
    main()
