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

``--shape llama-3.2-1b`` runs the speed comparison on a model of that shape built with
``from_config`` (random weights, so no perplexity; a tiny offline tokenizer): the chosen
SmolLM2 point's per-layer keep ratios interpolated onto its layers, kept neurons drawn at
random. A 1B model's time per token is dominated by its weights far more than a 135M
model's, which is what the speed target is about.

    python benchmarks/llamacpp.py [--types f16,q8_0,q4_k_m] [--rounds 5] [--threads 2]
    python benchmarks/llamacpp.py --shape llama-3.2-1b --types f16,q8_0
    python benchmarks/llamacpp.py --spec studies/qwen2.5-coder-1.5b.toml --types q8_0

``--spec`` takes another committed study instead of SmolLM2's: the chosen point of
``studies/results/STUDY/summary.json`` (STUDY: the spec's study name), pruned by the
operator the spec builds (``frontier.search.context.build_operator``: its cached
calibration, ranking and factors, lean where the spec's memory budget says so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frontier.data.text import TextSource
from frontier.export import export_model
from frontier.export import llamacpp as _llamacpp
from frontier.importance import calibrate
from frontier.models import load_model
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.testing import REAL_SHAPES

SUMMARY = Path(__file__).resolve().parents[1] / "studies/results/smollm2-135m/summary.json"


def chosen_point(summary: Path) -> tuple[int, Plan, dict[str, Any]]:
    data = json.loads(summary.read_text())
    (point,) = [p for p in data["points"] if p.get("chosen")]
    plan = Plan(tuple(point["widths"]), tuple(point["full"]))
    return int(point["number"]), plan, data["protocol"]


@dataclass
class Setup:
    """What is exported and measured: the model, its plans, how a plan is applied."""

    lm: Any
    plans: dict[str, Plan]
    select: Callable[[Plan], tuple[Any, Any]]  # plan -> (selection, refit weights or None)
    pruned: Callable[[Any], AbstractContextManager[Any]]
    describe: str
    windows: list[list[int]] | None = None  # perplexity windows; None: no perplexity
    text_file: Path | None = None


def _three_plans(pruned: Plan) -> dict[str, Plan]:
    full = pruned.full
    return {
        "original": Plan.dense(full),
        "pruned": pruned,
        "uniform": Plan.uniform(pruned.kept_fraction, full, multiple=32),
    }


def _operator(args: argparse.Namespace) -> tuple[int, Plan, Any, PruningOperator, str]:
    """(trial, plan, model, operator, study name): the chosen point of the committed study
    (SmolLM2's, or ``--spec``'s) and the operator that prunes it."""
    if args.spec:
        from frontier import settings
        from frontier.search.context import build_operator
        from frontier.study.spec import StudySpec

        spec = StudySpec.from_toml(Path(args.spec))
        trial, plan, _ = chosen_point(SUMMARY.parents[1] / spec.study_name / "summary.json")
        settings.set_memory_budget(spec.memory)
        lm = load_model(spec.model, dtype=spec.dtype, trust_remote_code=spec.trust_remote_code)
        return trial, plan, lm, build_operator(spec, lm), spec.study_name
    trial, plan, protocol = chosen_point(SUMMARY)
    lm = load_model(protocol["model"])
    cal = protocol["calibration"]
    refit = bool((protocol.get("operator") or {}).get("refit", False))
    scores = calibrate(
        lm,
        protocol["criterion"],
        text="wiki-sample",
        n_tokens=int(cal["tokens"]),
        seq_len=int(cal["seq_len"]),
        grams=refit,
    )
    return trial, plan, lm, PruningOperator.for_model(lm, scores, refit=refit), "smollm2-135m"


def real_setup(args: argparse.Namespace) -> Setup:
    """The committed study's chosen point, pruned by the study's operator."""
    trial, plan, lm, operator, study = _operator(args)

    def select(p: Plan) -> tuple[Any, Any]:
        selection = operator.select(p)
        return selection, operator.weights(selection)

    docs = TextSource("wiki-sample").documents("report")  # disjoint from calibration
    ids = lm.tokenizer("\n\n".join(docs)[:60_000])["input_ids"]
    windows = [ids[i * args.ctx : (i + 1) * args.ctx] for i in range(args.windows)]
    text_file = Path(tempfile.mkdtemp()) / "text.txt"
    text_file.write_text(lm.tokenizer.decode([t for w in windows for t in w]))
    return Setup(
        lm,
        _three_plans(plan),
        select,
        operator.pruned,
        f"trial {trial} of the committed {study} study, {plan.removed_fraction:.1%} of "
        f"MLP neurons removed; operator {operator.name}",
        windows,
        text_file,
    )


def shape_setup(args: argparse.Namespace) -> Setup:
    """A random model of a real shape, pruned to the chosen point's per-layer ratios."""
    from transformers import AutoModelForCausalLM

    from frontier.models import LoadedModel
    from frontier.pruning.surgery import Pruner
    from frontier.testing import real_shape_config, tiny_tokenizer

    torch.manual_seed(0)
    config = real_shape_config(args.shape)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    lm = LoadedModel(model, tiny_tokenizer(), source=args.shape, name=args.shape)
    full = lm.adapter.full_widths(model)
    trial, chosen, _ = chosen_point(SUMMARY)
    keep = np.asarray(chosen.keep_ratios())
    ratios = np.interp(np.linspace(0, len(keep) - 1, len(full)), np.arange(len(keep)), keep)
    plan = Plan.from_ratios([float(r) for r in ratios], full, multiple=32)
    gen = torch.Generator().manual_seed(0)
    pruner = Pruner(model, [torch.rand(w, generator=gen) for w in full])

    return Setup(
        lm,
        _three_plans(plan),
        lambda p: (pruner.select(p), None),
        pruner.pruned,
        f"{args.shape} (random weights), the per-layer keep ratios of trial {trial} of the "
        f"smollm2-135m study: {plan.removed_fraction:.1%} of MLP neurons removed",
    )


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
    ap.add_argument("--shape", choices=sorted(REAL_SHAPES), default=None, help="a random model")
    ap.add_argument("--spec", default=None, help="a committed study's spec (default: SmolLM2's)")
    args = ap.parse_args()
    _llamacpp.require()
    torch.set_num_threads(args.threads)
    types = [t for t in args.types.split(",") if t]
    setup = shape_setup(args) if args.shape else real_setup(args)
    print(f"plan: {setup.describe}", flush=True)

    root = Path(args.out or tempfile.mkdtemp(prefix="llamacpp-bench-"))
    files: dict[tuple[str, str], Path] = {}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for gtype in types:
        for name, plan in setup.plans.items():
            selection, refit = setup.select(plan)
            result = export_model(
                setup.lm,
                selection,
                root / f"{name}-{gtype}",
                format="gguf",
                gguf_type=gtype,
                force=True,
                refit=refit,
            )
            written, check = result.gguf, result.llamacpp
            assert written is not None and check is not None
            files[name, gtype] = written.path
            total, read = bytes_per_token(written.path)
            row: dict[str, Any] = {
                "file_bytes": written.path.stat().st_size,
                "tensor_bytes": total,
                "bytes_per_token": read,
                "layout": written.message,
                "fixed_text_max_logprob_diff": check.max_abs_logprob_diff,
                "pp": [],
                "tg": [],
            }
            if setup.windows is not None and setup.text_file is not None:
                with setup.pruned(selection):
                    cpp, hf = perplexities(
                        setup.lm.model, written.path, setup.windows, args.threads
                    )
                row["ppl_llamacpp"], row["ppl_transformers"] = cpp, hf
                row["ppl_llama_perplexity"] = _llamacpp.perplexity(
                    written.path, setup.text_file, ctx=args.ctx, threads=args.threads
                )
            rows[name, gtype] = row
            print(f"{name} {gtype}: {written.message}", flush=True)

    for r in range(args.rounds):  # interleaved: every round runs every file once
        for gtype in types:
            for name in setup.plans:
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
        for name in setup.plans:
            row = rows[name, gtype]
            row["pp_median"] = statistics.median(row["pp"])
            row["tg_median"] = statistics.median(row["tg"])
            ppl = [row.get(k) for k in ("ppl_llamacpp", "ppl_transformers", "ppl_llama_perplexity")]
            print(
                f"| {gtype} | {name} | {row['file_bytes'] / 1e6:.1f} | "
                f"{row['bytes_per_token'] / 1e6:.1f} | "
                + " | ".join("-" if v is None else f"{v:.3f}" for v in ppl)
                + f" | {row['pp_median']:.0f} | {row['tg_median']:.1f} |"
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
                    "plan": setup.describe,
                    "widths": list(setup.plans["pruned"].widths),
                    "rows": {f"{n}-{t}": v for (n, t), v in rows.items()},
                    "verdicts": verdicts,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
