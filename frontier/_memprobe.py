"""Measure the host (and GPU) memory and seconds of each stage of a study, beside the
estimate :mod:`frontier.memory` makes for it. Run as a process of its own:

    python -m frontier._memprobe (--model ALIAS_OR_PATH | --shape NAME) [--tokens N] ...

It prints one JSON line per stage: calibration (the pass and its Grams), ranking (the
greedy OBS scores), setup (the refit's alphas and factors), trial (one plan applied,
refit included, and one search evaluation). Before each stage the process's peak
resident memory (VmHWM) is reset (``/proc/self/clear_refs``), so each figure is that
stage's own peak; the model's weights and the process's own memory are in every one,
as they are in the estimate. ``--shape`` builds a model in one of
:data:`frontier.testing.REAL_SHAPES` from its config with random weights, for memory and
time only. Used by ``benchmarks/memory.py`` and ``tests/frontier/test_memprobe.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    """Start a stage's peak at what the process holds (the freed heap returned first, as
    a run does between stages: ``settings.trim_freed_memory``)."""
    import torch

    from frontier import settings

    settings.trim_freed_memory()
    Path("/proc/self/clear_refs").write_text("5")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak() -> dict[str, int]:
    import torch

    # host_file: the mapped file pages among them (mostly torch's libraries), which vary
    # with how much of those files the page cache holds, not with the work
    out = {"host_peak": _status("VmHWM"), "host_now": _status("VmRSS")}
    out["host_file"] = _status("RssFile")
    if torch.cuda.is_available():
        out["gpu_peak"] = int(torch.cuda.max_memory_allocated())
    return out


def _model(args: argparse.Namespace) -> Any:
    import torch

    from frontier.models import LoadedModel, load_model

    if args.model:
        return load_model(args.model, dtype=args.dtype, device=args.device)
    from transformers import AutoModelForCausalLM

    from frontier.models.device import torch_dtype
    from frontier.testing import real_shape_config, tiny_config, tiny_tokenizer

    config = (
        tiny_config(args.shape[5:])
        if args.shape.startswith("tiny-")
        else real_shape_config(args.shape)
    )
    for key, value in json.loads(args.config or "{}").items():
        setattr(config, key, value)
    torch.manual_seed(0)
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype(args.dtype))
    return LoadedModel(model.eval(), tiny_tokenizer(), args.shape, args.shape)


def _tokens(lm: Any, args: argparse.Namespace) -> Any:
    import torch

    from frontier.data.text import TextSource, TokenSet, token_windows

    seq = min(args.seq_len, lm.max_length)
    if args.model:
        return token_windows(
            TextSource("wiki-sample"),
            "calibration",
            lm.tokenizer,
            n_tokens=args.tokens,
            seq_len=seq,
        )
    vocab = int(lm.model.get_input_embeddings().weight.shape[0])
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (args.tokens // seq, seq), generator=gen)
    return TokenSet(ids, "random ids", "calibration", seq, f"random-{vocab}-{args.tokens}-{seq}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m frontier._memprobe")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="an alias, folder or GGUF file")
    which.add_argument("--shape", help="a REAL_SHAPES name (random weights), or tiny-FAMILY")
    ap.add_argument("--config", help="JSON of config fields to set on --shape")
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tokens", type=int, default=16384, help="calibration tokens")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--search-tokens", type=int, default=2048)
    ap.add_argument("--keep", type=float, default=0.5, help="the trial's uniform keep ratio")
    ap.add_argument("--memory", type=float, default=None, help="host budget in GiB")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--layers",
        type=int,
        default=None,
        help="keep only the first N decoder layers, for seconds per layer (a 'full_eval' row "
        "times one search evaluation of the whole model first, so the refit's share can be "
        "scaled to it). Its memory figures are not the estimate's: the whole checkpoint stays "
        "mapped and its evaluated pages resident",
    )
    args = ap.parse_args(argv)

    from frontier import settings

    settings.return_freed_memory()
    settings.set_threads(args.threads)
    settings.set_memory_budget(args.memory)
    import sys

    from frontier.budget import layout_for
    from frontier.importance import compute_scores
    from frontier.memory import mlp_shape
    from frontier.pruning.operator import PruningOperator
    from frontier.pruning.plan import Plan
    from frontier.search.context import search_objective
    from frontier.study.spec import StudySpec

    def say(line: str) -> None:
        print(f"… {line}", file=sys.stderr, flush=True)

    def emit(stage: str, seconds: float, estimate: int | None, **extra: Any) -> None:
        row = {"stage": stage, "seconds": round(seconds, 2), **_peak(), "estimate": estimate}
        print(json.dumps({**row, **extra}), flush=True)

    t = time.perf_counter()
    lm = _model(args)
    emit("load", time.perf_counter() - t, None)
    if args.layers:
        spec = StudySpec(model=args.model or args.shape, search_tokens=args.search_tokens)
        whole = search_objective(spec)
        if args.model:
            whole.prepare(lm)
            t = time.perf_counter()
            whole.evaluate(lm)
            emit(
                "full_eval", time.perf_counter() - t, None, layers=len(lm.adapter.handles(lm.model))
            )
        _truncate(lm, args.layers)
    tokens = _tokens(lm, args)
    layout = layout_for(
        lm,
        refit=True,
        grams=True,
        batch_tokens=4 * tokens.ids.shape[1],
        calibration_tokens=tokens.ids.numel(),
    )
    assert layout is not None
    _, hidden, width = mlp_shape(lm.model.config)
    peaks = layout.peaks(width=width, hidden=hidden, on_gpu=lm.device.type == "cuda")
    gpu = lm.device.type == "cuda"
    if gpu:
        import torch

        total = torch.cuda.get_device_properties(lm.device).total_memory
        gpu_peak = layout.gpu_peak(width=width, hidden=hidden, gpu_bytes=total)

    def gpu_est() -> dict[str, Any]:
        return {"gpu_estimate": gpu_peak} if gpu else {}

    _reset_peak()
    t = time.perf_counter()
    compute_scores(lm, "energy", tokens, grams=True, progress=say)
    emit(
        "calibration",
        time.perf_counter() - t,
        peaks["calibration"],
        layout=layout.describe(),
        **gpu_est(),
    )
    _reset_peak()
    t = time.perf_counter()
    scores = compute_scores(lm, "obs-greedy", tokens, grams=True, progress=say)
    emit("ranking", time.perf_counter() - t, peaks.get("ranking"), **gpu_est())
    # a study's search evaluation, as find builds it (defaults but the token count)
    spec = StudySpec(model=args.model or args.shape, search_tokens=args.search_tokens)
    ppl = search_objective(spec)
    if args.model:
        ppl.prepare(lm)
    _reset_peak()
    t = time.perf_counter()
    op = PruningOperator.for_model(lm, scores, refit=True, progress=say)
    assert op.refitter is not None
    emit(
        "setup",
        time.perf_counter() - t,
        peaks["setup"],
        placement=op.refitter.placement(),
        **gpu_est(),
    )
    plan = Plan.uniform(args.keep, op.full)
    _reset_peak()
    t = time.perf_counter()
    op.apply(plan)
    refit_s = time.perf_counter() - t
    t = time.perf_counter()
    if args.model:
        ppl.evaluate(lm)
    else:
        _random_eval(lm, args.search_tokens)
    eval_s = time.perf_counter() - t
    op.restore()
    emit(
        "trial",
        refit_s + eval_s,
        peaks["trial"],
        refit_seconds=round(refit_s, 2),
        eval_seconds=round(eval_s, 2),
        refit_share=round(refit_s / eval_s, 3),
        **gpu_est(),
    )


def _truncate(lm: Any, n: int) -> None:
    """Keep the first ``n`` decoder layers of ``lm`` (its config says so too)."""
    from torch import nn

    path = lm.adapter.layers
    parent_path, _, name = path.rpartition(".")
    parent = lm.model
    for part in parent_path.split(".") if parent_path else []:
        parent = getattr(parent, part)
    setattr(parent, name, nn.ModuleList(list(getattr(parent, name))[:n]))
    cfg = lm.adapter.decoder_config(lm.model.config)
    cfg.num_hidden_layers = n
    if isinstance(getattr(cfg, "layer_types", None), list):
        cfg.layer_types = cfg.layer_types[:n]


def _random_eval(lm: Any, n_tokens: int) -> None:
    """One search evaluation's work on random ids (a model with random weights has no
    text to measure): the forward passes, and each batch's logits and log-softmax."""
    import torch

    seq = min(256, lm.max_length)  # a study's search window
    vocab = int(lm.model.get_input_embeddings().weight.shape[0])
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (max(1, n_tokens // seq), seq), generator=gen)
    batch = max(1, (1 << 30) // (seq * vocab * 4))  # the objectives' logits budget
    with torch.inference_mode():
        for start in range(0, ids.shape[0], batch):
            chunk = ids[start : start + batch].to(lm.device)
            logits = lm.model(input_ids=chunk, use_cache=False).logits[:, :-1].float()
            torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1)
            )


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
