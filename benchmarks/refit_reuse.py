"""How much of a study's refit work a cache of refitted layers across trials would save.

    python benchmarks/refit_reuse.py [studies/results/STUDY ...]

A trial refits every pruned layer from its factors: about ``H * n * min(n, I - n)``
multiply-adds for a layer kept ``n`` wide out of ``I`` (``frontier.pruning.refit``). The
kept set of a layer depends only on its width (the ranking is fixed for the study), so a
cache keyed by (layer, width) could hand an earlier trial's refitted columns to a later
trial that keeps that layer at the same width. This reads committed studies'
``summary.json`` (the widths of every trial, in trial order) and prints, per study:

- the search trials' layer refits and how many of them repeat a (layer, width) pair an
  earlier trial refitted (the hits such a cache would have);
- the share of the refit's arithmetic those hits are (each refit weighted by
  ``n * min(n, I - n)``; ``H`` is the same for every layer and cancels);
- the final stage's re-measured trials, whose refits would all be hits;
- the distinct pairs, which is what the cache would have to hold.

It measures nothing on a model: it is the count behind a design decision. Layers kept
whole need no refit and are left out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from frontier.study.summary import StudySummary

RESULTS = Path(__file__).resolve().parents[1] / "studies/results"


def cost(width: int, full: int) -> int:
    """The refit's multiply-adds for a layer kept ``width`` of ``full`` wide, over ``H``."""
    return width * min(width, full - width)


def reuse(summary: StudySummary) -> dict[str, float]:
    """The cache's hits over one study's search trials, in trial order."""
    seen: set[tuple[int, int]] = set()
    refits = hits = 0
    work = saved = 0
    for point in sorted(summary.points, key=lambda p: p.number):
        for layer, (width, full) in enumerate(zip(point.widths, point.full, strict=True)):
            if width >= full:
                continue
            refits += 1
            work += cost(width, full)
            if (layer, width) in seen:
                hits += 1
                saved += cost(width, full)
            seen.add((layer, width))
    return {
        "trials": len(summary.points),
        "refits": refits,
        "hits": hits,
        "hit_share": hits / refits if refits else 0.0,
        "work_share": saved / work if work else 0.0,
        "final_trials": len(summary.final),
        "distinct": len(seen),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("studies", nargs="*", type=Path, help="result folders (default: all)")
    args = ap.parse_args()
    folders = args.studies or sorted(p.parent for p in RESULTS.glob("*/summary.json"))
    print(
        "| study | search trials | layer refits | hits | hit share | share of the refit's "
        "arithmetic | final-stage trials (all hits) | distinct (layer, width) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for folder in folders:
        r = reuse(StudySummary.from_json((folder / "summary.json").read_text()))
        print(
            f"| {folder.name} | {r['trials']} | {r['refits']} | {r['hits']} | "
            f"{r['hit_share']:.3f} | {r['work_share']:.3f} | {r['final_trials']} | "
            f"{r['distinct']} |"
        )


if __name__ == "__main__":
    main()
