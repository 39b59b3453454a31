"""Deciding ``ppl<T`` on the held-out interval instead of the point estimate: would the
committed studies choose another point?

    python benchmarks/ppl_interval.py [--studies smollm2-135m,gemma3-270m]
                                      [--confidence 0.9] [--threads 2]

For each committed study (``studies/results/STUDY/summary.json``) every re-measured point
(the candidates and the points that only spread the front) is pruned again by the study's
operator (its criterion, calibration text and tokens, refit: rebuilt from the cache, or
calibrated where the cache lacks it) and measured on the study's held-out protocol: the
report part of its text, ``report_tokens`` in windows of ``seq_len``, the text's
fingerprint checked against the protocol's. For each point it prints the perplexity ratio
and its paired interval over the windows at ``--confidence``
(:func:`frontier.stats.log_ratio_interval`), and whether the perplexity SLO passes on the
point estimate (the ratio below the threshold) and on the interval (its upper end below
it). Then the point each rule chooses: the most MLP removed among the passing candidates
(points measured only to spread the front are shown, never chosen, as in the study).

A point re-measured here on the same text must reproduce the recorded ratio; the column
``recorded`` shows it beside the new figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from frontier.errors import FrontierError
from frontier.models import load_model
from frontier.pruning.plan import Plan
from frontier.search.context import build_operator
from frontier.study.slo import parse_slos
from frontier.study.spec import StudySpec
from objectives import create

RESULTS = Path(__file__).resolve().parents[1] / "studies/results"


def _spec(protocol: dict[str, Any]) -> StudySpec:
    """The study's operator and held-out protocol as a spec (what rebuilding needs)."""
    cal = protocol["calibration"]
    op = protocol["operator"]
    return StudySpec.from_dict(
        {
            "model": protocol["model"],
            "slos": list(protocol["slos"]),
            "criterion": op["criterion"],
            "refit": bool(op["refit"]),
            "compensate": bool(op.get("compensate", False)),
            "calibration_tokens": int(cal["tokens"]),
            "calibration_seq_len": int(cal["seq_len"]),
            "seq_len": int(protocol["report"]["ppl"]["seq_len"]),
            "report_tokens": int(protocol["report"]["ppl"]["tokens"]),
        }
    )


def study_rows(name: str, confidence: float) -> tuple[list[dict[str, Any]], float]:
    data = json.loads((RESULTS / name / "summary.json").read_text())
    protocol = data["protocol"]
    spec = _spec(protocol)
    (slo,) = [s for s in parse_slos(spec.slos) if s.metric == "ppl"]
    lm = load_model(spec.model)
    operator = build_operator(spec, lm, say=lambda m: print(f"  {name}: {m}", flush=True))
    ppl = create(
        "ppl",
        text="wiki-sample",
        role="report",
        n_tokens=spec.report_tokens,
        seq_len=spec.seq_len,
        confidence=confidence,
    )
    ppl.prepare(lm)
    want = protocol["report"]["ppl"]["fingerprint"]
    got = ppl.text_protocol()["fingerprint"]
    if got != want:
        raise FrontierError(f"{name}: held-out text {got} is not the study's {want}")
    rows = []
    for point in sorted(data["final"], key=lambda p: p["mlp_removed"]):
        plan = Plan(tuple(point["widths"]), tuple(point["full"]))
        with operator.pruned(plan):
            m = ppl.evaluate(lm)
        low, high = m.details["interval"]
        rows.append(
            {
                "trial": point["number"],
                "mlp_removed": point["mlp_removed"],
                "recorded": point["ppl_ratio"],
                "ratio": m.value,
                "low": low,
                "high": high,
                "spread": bool(point.get("spread")),
                "point_pass": m.value < slo.threshold,
                "interval_pass": high < slo.threshold,
            }
        )
        print(f"  {name}: trial {point['number']} measured", flush=True)
    return rows, slo.threshold


def _chosen(rows: list[dict[str, Any]], rule: str) -> str:
    ok = [r for r in rows if r[rule] and not r["spread"]]
    if not ok:
        return "none"
    best = max(ok, key=lambda r: r["mlp_removed"])
    return f"trial {best['trial']} ({100 * best['mlp_removed']:.1f}% MLP removed)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in [s for s in args.studies.split(",") if s]:
        rows, threshold = study_rows(name, args.confidence)
        level = f"{100 * args.confidence:.0f}%"
        print(f"\n{name}: ppl<{threshold}, {level} paired interval over the held-out windows")
        print("| trial | MLP removed | recorded | ratio | interval | point | interval rule |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            tag = " (spread only)" if r["spread"] else ""
            print(
                f"| {r['trial']}{tag} | {100 * r['mlp_removed']:.1f}% | {r['recorded']:.3f} | "
                f"{r['ratio']:.3f} | [{r['low']:.3f}, {r['high']:.3f}] | "
                f"{'pass' if r['point_pass'] else 'fail'} | "
                f"{'pass' if r['interval_pass'] else 'fail'} |"
            )
        print(f"chosen on the point estimate: {_chosen(rows, 'point_pass')}")
        print(f"chosen on the interval's upper end: {_chosen(rows, 'interval_pass')}")


if __name__ == "__main__":
    main()
