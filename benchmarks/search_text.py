"""Which search-time text predicts the held-out figures? Plans of one size, read on each.

    python benchmarks/search_text.py [--model smollm2-135m] [--removed 0.5] [--mutants 14]

The search decides on a cheap signal (2,048 tokens a trial); the user is given held-out
figures. Plans of one size that differ only in how the cut is spread over the layers are
what the search must rank near the SLO boundary, so this measures, for each way of
reading the search text, how well its ranking of such plans agrees with the held-out
ranking (Spearman and Kendall over the plans) and how far its ratios are from the
held-out ones. The plans, all at ``--removed`` of the MLP neurons, study default operator
(obs + refit, 65,536 calibration tokens):

* the uniform plan;
* ``--mutants`` seeded level-switch mutants of it over 10 layer groups, drawn here (one to
  four moves of 0.05-0.15 of a group's relative keep to another group; the boundary
  sampler's own switches are one to three moves of 0.05-0.10);
* a sensitivity allocation: every layer cut alone at 25% and 50% on the *legacy* search
  text (the search part's first 2,048 tokens), a quadratic through those figures per
  layer, and the allocation that minimises their sum at the size (a plan tuned on one
  text, the way a search over it would tune).

Text sets (all ratios to the unpruned model on the same windows): ``legacy`` the search
part's first 2,048 tokens in 1,024-token windows (studies before 2026-11-30); ``strided``
8 x 256 tokens at even strides over the whole search part (the default since); two larger
strided sets; ``held-out`` the report part's first 16,384 tokens in 1,024-token windows
(the figures the user reads).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time

import torch
from scipy.stats import kendalltau, spearmanr

from frontier import settings
from frontier.data.text import Role, TextSource, token_windows
from frontier.models import load_model
from frontier.pruning.plan import Plan
from frontier.search.context import build_operator
from frontier.search.space import Space
from frontier.study.spec import StudySpec
from objectives._lm import mean_nll

TEXTS: dict[str, tuple[Role, int, int, bool]] = {  # name: (role, tokens, window, strided)
    "legacy 2x1024": ("search", 2048, 1024, False),
    "strided 8x256": ("search", 2048, 256, True),
    "strided 16x256": ("search", 4096, 256, True),
    "strided 16x1024": ("search", 16384, 1024, True),
    "held-out 16x1024": ("report", 16384, 1024, False),
}
HELD_OUT = "held-out 16x1024"


def mutants(space: Space, removed: float, n: int, seed: int) -> dict[str, tuple[int, ...]]:
    rng = random.Random(seed)
    out = {}
    for i in range(n):
        shape = [1.0] * space.n_groups
        for _ in range(rng.choice((1, 2, 3, 4))):
            up, down = rng.sample(range(space.n_groups), 2)
            delta = 0.05 * rng.choice((1, 2, 3))
            if shape[up] + delta <= 1.5 and shape[down] - delta >= 0.5:
                shape[up] += delta
                shape[down] -= delta
        out[f"mutant {i}"] = space.plan(space.ratios(1 - removed, shape)).widths
    return out


def sensitivity_plan(
    layer_cost: list[tuple[float, float]], full: tuple[int, ...], removed: float
) -> tuple[int, ...]:
    """Per layer ``cost(r) = a r + b r^2`` (r: share removed); the widths (multiples of 8,
    at least 20% kept) minimising the summed cost at ``removed``, by bisection on the
    Lagrange multiplier of the size."""
    target = round(sum(full) * (1 - removed))

    def widths(lam: float) -> list[int]:
        out = []
        for (a, b), f in zip(layer_cost, full, strict=True):
            kept = torch.arange(8, f + 1, 8, dtype=torch.float64)
            r = 1 - kept / f
            cost = a * r + b * r * r + lam * kept / f
            cost[r > 0.8] = math.inf
            out.append(int(kept[int(cost.argmin())]))
        return out

    lo, hi = 1e-9, 1e3
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if sum(widths(mid)) > target else (lo, mid)
    return tuple(widths(hi))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--removed", type=float, default=0.5)
    ap.add_argument("--mutants", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    settings.set_threads(args.threads)
    spec = StudySpec(model=args.model).resolved()
    lm = load_model(spec.model, dtype=spec.dtype, device=spec.device)
    op = build_operator(spec, lm, say=print)
    full = op.full
    src = TextSource(spec.text)
    ids = {
        name: token_windows(src, role, lm.tokenizer, n_tokens=n, seq_len=w, strided=s).ids
        for name, (role, n, w, s) in TEXTS.items()
    }
    base = {name: mean_nll(lm.model, x) for name, x in ids.items()}

    def log_ratio(widths: tuple[int, ...], names: list[str]) -> dict[str, float]:
        with op.pruned(Plan(widths, full)):
            return {n: mean_nll(lm.model, ids[n]) - base[n] for n in names}

    t = time.perf_counter()
    cut: dict[float, list[float]] = {0.25: [], 0.5: []}
    for r, costs in cut.items():
        for layer, f in enumerate(full):
            one = list(full)
            one[layer] = round(f * (1 - r) / 8) * 8
            costs.append(log_ratio(tuple(one), ["legacy 2x1024"])["legacy 2x1024"])
    layer_cost = []
    for y1, y2 in zip(cut[0.25], cut[0.5], strict=True):  # a r + b r^2 through both
        b = (y2 / 0.5 - y1 / 0.25) / 0.25
        layer_cost.append((y1 / 0.25 - b * 0.25, b))
    print(f"sensitivity scan: {2 * len(full)} single-layer cuts in {time.perf_counter() - t:.0f} s")
    space = Space.build(full, lo=0.2, hi=1.0, step=0.025, groups=10, multiple=8)
    plans = {"uniform": space.plan([1 - args.removed] * space.n_groups).widths}
    plans["sensitivity"] = sensitivity_plan(layer_cost, full, args.removed)
    plans.update(mutants(space, args.removed, args.mutants, args.seed))
    rows = {}
    for name, widths in plans.items():
        t = time.perf_counter()
        rows[name] = {k: math.exp(v) for k, v in log_ratio(widths, list(TEXTS)).items()}
        size = 1 - sum(widths) / sum(full)
        figures = "  ".join(f"{k} {v:.3f}" for k, v in rows[name].items())
        print(f"{name:12s} removed {size:.3f}  {figures}  ({time.perf_counter() - t:.0f} s)")
    truth = [rows[n][HELD_OUT] for n in plans]
    print(f"\nagreement with {HELD_OUT} over {len(plans)} plans at {args.removed:.0%} removed:")
    print("| search text | tokens | Spearman | Kendall | mean abs diff | sensitivity vs uniform |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for name, (_role, n, _w, _s) in TEXTS.items():
        got = [rows[p][name] for p in plans]
        rho, tau = spearmanr(got, truth)[0], kendalltau(got, truth)[0]
        diff = sum(abs(a - b) for a, b in zip(got, truth, strict=True)) / len(got)
        sens = rows["sensitivity"][name] - rows["uniform"][name]
        summary[name] = {"spearman": rho, "kendall": tau, "mean_abs_diff": diff}
        print(f"| {name} | {n:,} | {rho:.3f} | {tau:.3f} | {diff:.3f} | {sens:+.3f} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"plans": plans, "rows": rows, "summary": summary}, out, indent=1)


if __name__ == "__main__":
    main()
