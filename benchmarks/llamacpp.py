"""A pruned SmolLM2 in llama.cpp: GGUF size, perplexity and speed against the original.

The plan is the chosen point of the committed study (``studies/results/smollm2-135m/
summary.json``, its per-layer widths), pruned by the study's own operator: its criterion,
calibration text and tokens, and the refit of the kept down-projection columns when the
study's operator refits (``frontier.importance.calibrate``: normally a cache hit).
The original and the pruned model are exported with ``frontier.export_model(format=
"gguf")`` at each type, then, for each type:

- GGUF size, and the weight bytes read per generated token (every tensor but the
  embedding table, which is only indexed; with tied embeddings the table is the output
  matrix and is counted once);
- perplexity on the same tokens through llama.cpp (``frontier-logits``) and through
  transformers (windows of ``--ctx`` tokens, the second half of each scored, as
  ``llama-perplexity`` does), and ``llama-perplexity``'s own figure on the same text;
- prompt-processing and generation tokens/s from ``llama-bench``, every file once in
  every round (interleaved), medians over ``--rounds``; the speed-up is the median over
  rounds of pruned / original in the same round.

Besides the original and the pruned (per-layer widths: llama.cpp's ``deci``
architecture), a third file holds a *uniform* plan with the same number of MLP neurons
(plain ``llama`` architecture), so that what the per-layer build costs in llama.cpp is
seen apart from what the smaller widths save.

The text is the report part of frontier's ``wiki-sample`` (the Wikipedia sample of the
``exllamav2`` package, not WikiText-2; disjoint from the calibration articles).
Needs ``frontier llamacpp build`` first.

    python benchmarks/llamacpp.py [--types f16,q8_0,q4_k_m] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frontier.data.text import TextSource
from frontier.export import _llamacpp, export_model
from frontier.importance import calibrate
from frontier.models import load_model
from frontier.operator import PruningOperator
from frontier.plan import Plan

SUMMARY = Path(__file__).resolve().parents[1] / "studies/results/smollm2-135m/summary.json"


def chosen_widths(summary: Path) -> tuple[int, tuple[int, ...], dict[str, Any]]:
    data = json.loads(summary.read_text())
    (point,) = [p for p in data["points"] if p.get("chosen")]
    return int(point["number"]), tuple(point["widths"]), data["protocol"]


def bytes_per_token(path: Path) -> tuple[int, int]:
    """(all tensor bytes, bytes a generated token reads)."""
    from gguf import GGUFReader

    sizes = {t.name: int(t.n_bytes) for t in GGUFReader(str(path)).tensors}
    total = sum(sizes.values())
    # the embedding table is indexed (one row), unless it is also the output matrix
    read = total - (sizes["token_embd.weight"] if "output.weight" in sizes else 0)
    return total, read


def window_nll(logits: np.ndarray, ids: list[int]) -> tuple[float, int]:
    """Summed NLL of the second half of one window (llama-perplexity's protocol)."""
    lp = torch.from_numpy(logits).double().log_softmax(-1)
    first = len(ids) // 2
    targets = torch.tensor(ids[first + 1 :])
    picked = lp[first : len(ids) - 1].gather(1, targets[:, None])
    return float(-picked.sum()), len(targets)


def perplexities(
    model: Any, gguf: Path, windows: list[list[int]], threads: int
) -> tuple[float, float]:
    """(llama.cpp, transformers) perplexity on the same token windows."""
    cpp, hf, n = 0.0, 0.0, 0
    for ids in windows:
        a, count = window_nll(_llamacpp.logits(gguf, ids, threads=threads), ids)
        with torch.no_grad():
            t = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float().numpy()
        b, _ = window_nll(t, ids)
        cpp, hf, n = cpp + a, hf + b, n + count
    return float(np.exp(cpp / n)), float(np.exp(hf / n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--types", default="f16,q8_0,q4_k_m")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--windows", type=int, default=4, help="perplexity windows of --ctx")
    ap.add_argument("--prompt", type=int, default=128, help="llama-bench prompt tokens")
    ap.add_argument("--gen", type=int, default=64, help="llama-bench generated tokens")
    ap.add_argument("--out", default=None, help="folder for the GGUFs (default: temporary)")
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args()
    _llamacpp.require()
    torch.set_num_threads(args.threads)
    types = [t for t in args.types.split(",") if t]

    trial, widths, protocol = chosen_widths(SUMMARY)
    lm = load_model(protocol["model"])
    full = lm.adapter.full_widths(lm.model)
    cal = protocol["calibration"]
    recorded = protocol.get("operator") or {}
    refit = bool(recorded.get("refit", False))
    scores = calibrate(
        lm,
        protocol["criterion"],
        text=protocol.get("calibration_text", "wiki-sample"),
        n_tokens=int(cal["tokens"]),
        seq_len=int(cal["seq_len"]),
        grams=refit,
    )
    operator = PruningOperator.for_model(lm, scores, refit=refit)
    plans = {
        "original": Plan.dense(full),
        "pruned": Plan(widths, full),
        "uniform": Plan.uniform(sum(widths) / sum(full), full, multiple=32),
    }
    print(
        f"plan: trial {trial} of the committed smollm2-135m study, "
        f"{1 - sum(widths) / sum(full):.1%} of MLP neurons removed; operator {operator.name}"
    )
    docs = TextSource("wiki-sample").documents("report")  # disjoint from calibration
    text = "\n\n".join(docs)[:60_000]
    ids = lm.tokenizer(text)["input_ids"]
    windows = [ids[i * args.ctx : (i + 1) * args.ctx] for i in range(args.windows)]
    text_file = Path(tempfile.mkdtemp()) / "text.txt"
    text_file.write_text(lm.tokenizer.decode([t for w in windows for t in w]))

    root = Path(args.out or tempfile.mkdtemp(prefix="llamacpp-bench-"))
    files: dict[tuple[str, str], Path] = {}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for gtype in types:
        for name, plan in plans.items():
            out = root / f"{name}-{gtype}"
            selection = operator.select(plan)
            result = export_model(
                lm,
                selection,
                out,
                format="gguf",
                gguf_type=gtype,
                force=True,
                refit=operator.weights(selection),
            )
            written, check = result.gguf, result.llamacpp
            assert written is not None and check is not None
            files[name, gtype] = written.path
            total, read = bytes_per_token(written.path)
            with operator.pruned(selection):
                ppl_cpp, ppl_hf = perplexities(lm.model, written.path, windows, args.threads)
            ppl_tool = _llamacpp.perplexity(
                written.path, text_file, ctx=args.ctx, threads=args.threads
            )
            rows[name, gtype] = {
                "file_bytes": written.path.stat().st_size,
                "tensor_bytes": total,
                "bytes_per_token": read,
                "ppl_llamacpp": ppl_cpp,
                "ppl_transformers": ppl_hf,
                "ppl_llama_perplexity": ppl_tool,
                "layout": written.message,
                "fixed_text_max_logprob_diff": check.max_abs_logprob_diff,
                "pp": [],
                "tg": [],
            }
            print(f"{name} {gtype}: {written.message}", flush=True)

    for r in range(args.rounds):  # interleaved: every round runs every file once
        for gtype in types:
            for name in plans:
                speed = _llamacpp.bench(
                    files[name, gtype],
                    n_prompt=args.prompt,
                    n_gen=args.gen,
                    reps=1,
                    threads=args.threads,
                )
                rows[name, gtype]["pp"].append(speed.prompt)
                rows[name, gtype]["tg"].append(speed.generation)
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    print(
        f"\n{args.threads} threads, {os.cpu_count()} cores: medians of interleaved rounds; "
        f"llama-bench -p {args.prompt} -n {args.gen} -t {args.threads}"
    )
    header = (
        "| type | model | GGUF MB | MB read/token | ppl llama.cpp | ppl transformers | "
        "ppl llama-perplexity | pp tok/s | tg tok/s |"
    )
    print(header)
    print("|" + "---|" * 9)
    verdicts = []
    for gtype in types:
        for name in plans:
            row = rows[name, gtype]
            row["pp_median"] = statistics.median(row["pp"])
            row["tg_median"] = statistics.median(row["tg"])
            print(
                f"| {gtype} | {name} | {row['file_bytes'] / 1e6:.1f} | "
                f"{row['bytes_per_token'] / 1e6:.1f} | {row['ppl_llamacpp']:.3f} | "
                f"{row['ppl_transformers']:.3f} | {row['ppl_llama_perplexity']:.3f} | "
                f"{row['pp_median']:.0f} | {row['tg_median']:.1f} |"
            )
        orig = rows["original", gtype]
        for name in ("pruned", "uniform"):
            row = rows[name, gtype]
            reduction = 1 - row["bytes_per_token"] / orig["bytes_per_token"]
            # the same round's files ran back to back: their ratio is the paired figure
            speed = statistics.median(a / b for a, b in zip(row["tg"], orig["tg"], strict=True))
            row["tg_speedup_paired_median"] = speed
            saved = 1 - 1 / speed  # time per generated token saved
            ok = saved >= 0.8 * reduction
            verdicts.append(
                f"{gtype} {name} ({row['layout'].split(':')[0]}): bytes read per token "
                f"-{reduction:.1%}, generation time per token -{saved:.1%} (speed x{speed:.3f}, "
                f"median of per-round ratios); target -{0.8 * reduction:.1%}: "
                f"{'met' if ok else 'NOT met'}"
            )
    print("\n".join(verdicts))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "trial": trial,
                    "widths": widths,
                    "rows": {f"{n}-{t}": v for (n, t), v in rows.items()},
                    "verdicts": verdicts,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
