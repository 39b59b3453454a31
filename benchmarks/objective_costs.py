"""Objective benchmark: the time of one evaluation of each objective, at search-time and
at report fidelity, measured side by side on the same loaded model.

    python benchmarks/objective_costs.py [--model smollm2-135m] [--tasks arc_easy,hellaswag]

Fidelities are the defaults of ``frontier find``: search = 2,048 tokens and 100 documents
per task; report = 16,384 held-out tokens and 500 report documents per task.
"""

from __future__ import annotations

import argparse
import time

import torch

from frontier import settings
from frontier.models import load_model
from frontier.study.spec import StudySpec
from objectives import Objective, create


def _timed(obj: Objective, lm: object) -> tuple[float, float, float]:
    t = time.perf_counter()
    obj.prepare(lm)  # type: ignore[arg-type]
    prep = time.perf_counter() - t
    t = time.perf_counter()
    m = obj.evaluate(lm)  # type: ignore[arg-type]
    return prep, time.perf_counter() - t, m.value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tasks", default="arc_easy,hellaswag")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    settings.set_threads(args.threads)
    spec = StudySpec()
    tasks = [t for t in args.tasks.split(",") if t]
    lm = load_model(args.model)
    rows: list[tuple[str, str, Objective]] = [
        ("ppl", "search", create("ppl", role="search", n_tokens=spec.search_tokens)),
        ("ppl", "report", create("ppl", role="report", n_tokens=spec.report_tokens)),
        ("kl", "search", create("kl", role="search", n_tokens=spec.search_tokens)),
        ("params", "any", create("params")),
        ("speed", "any", create("speed")),
    ]
    for task in tasks:
        rows.append(
            (task, "search", create("tasks", tasks=[task], n_docs=spec.task_docs, role="search"))
        )
        rows.append(
            (task, "report", create("tasks", tasks=[task], n_docs=spec.report_docs, role="report"))
        )
    print(f"model {lm.name}, {torch.get_num_threads()} threads, fp32 CPU")
    print(f"{'objective':14s} {'fidelity':8s} {'prepare s':>10s} {'evaluate s':>11s}  value")
    for name, fidelity, obj in rows:
        prep, ev, value = _timed(obj, lm)
        print(f"{name:14s} {fidelity:8s} {prep:10.2f} {ev:11.2f}  {value:.4f}")


if __name__ == "__main__":
    main()
