"""Stack int8 dynamic quantization on a pruned export: perplexity, size and speed vs fp32.

Pruning removes MLP neurons; int8 dynamic quantization (``torch.ao``, CPU, the decoder's
``nn.Linear``) shrinks what is left. This loads an export (any format, through
``frontier.export.load_pruned``), optionally the original model too, and prints one
row per variant: weight bytes, perplexity on a text, prefill and decode time (medians).

The default text is the Wikipedia sample shipped in the ``exllamav2`` package
(``conversion/standard_cal_data/wiki.utf8``; its last articles, not WikiText-2).

    python benchmarks/quantize.py EXPORT_DIR [--original smollm2-135m] [--text FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn


def wiki_sample(chars: int) -> str:
    """The last ``chars`` characters of the exllamav2 Wikipedia sample, tags removed."""
    spec = importlib.util.find_spec("exllamav2")  # located, never imported
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("no --text given and the exllamav2 package (wiki sample) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "conversion/standard_cal_data/wiki.utf8"
    text = re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8"))
    return text[-chars:]


@torch.no_grad()
def perplexity(model: Any, ids: torch.Tensor, window: int) -> float:
    """exp(mean NLL) over non-overlapping windows of ``window`` tokens."""
    nll, count = 0.0, 0
    for start in range(0, ids.numel() - 1, window):
        chunk = ids[start : start + window + 1].unsqueeze(0)
        if chunk.shape[1] < 2:
            break
        logits = model(input_ids=chunk[:, :-1], use_cache=False).logits.float()
        loss = nn.functional.cross_entropy(logits[0], chunk[0, 1:], reduction="sum")
        nll += float(loss)
        count += chunk.shape[1] - 1
    return float(torch.exp(torch.tensor(nll / count)))


@torch.no_grad()
def speed(
    model: Any, ids: torch.Tensor, *, prefill: int, decode: int, reps: int
) -> tuple[float, float]:
    """Median prefill time (ms for ``prefill`` tokens) and decode time (ms per token, KV cache)."""
    prompt = ids[:prefill].unsqueeze(0)
    model(input_ids=prompt[:, :16])  # warm-up
    pre, dec = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = model(input_ids=prompt, use_cache=True)
        pre.append(time.perf_counter() - t0)
        past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        t0 = time.perf_counter()
        for _ in range(decode):
            out = model(input_ids=token, past_key_values=past, use_cache=True)
            past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        dec.append((time.perf_counter() - t0) / decode)
    return 1000 * statistics.median(pre), 1000 * statistics.median(dec)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the weights in memory; int8 linears count their int8 weight and fp32 bias."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    total, seen = 0, set()
    for module in model.modules():
        if isinstance(module, DynamicLinear):  # weight() builds a new tensor on every call
            for t in (module.weight(), module.bias()):
                total += 0 if t is None else t.numel() * t.element_size()
            continue
        for t in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            if id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()
    return total


def int8(model: Any, *, head: bool) -> nn.Module:
    """A copy of ``model`` with its nn.Linear layers int8 dynamic-quantized (per tensor).

    The LM head is left in fp32 unless ``head``: it is tied to the embeddings in many
    small models, and per-tensor int8 over a large vocabulary costs the most accuracy.
    """
    from torch.ao.quantization import quantize_dynamic

    out_head = model.get_output_embeddings()
    names = {
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and (head or module is not out_head)
    }
    with warnings.catch_warnings():  # torch.ao's own deprecation notices, every call
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, names, dtype=torch.qint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export", type=Path, help="a frontier export folder")
    ap.add_argument("--original", help="the unpruned model (frontier.models.load_model spec)")
    ap.add_argument("--text", type=Path, help="UTF-8 text file (default: Wikipedia sample)")
    ap.add_argument("--tokens", type=int, default=2048, help="tokens scored for perplexity")
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--prefill", type=int, default=256)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quantize-head", action="store_true", help="int8 the LM head too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from frontier.export import load_pruned, read_record

    pruned, tokenizer = load_pruned(args.export, dtype="fp32")
    record = read_record(args.export)
    text = args.text.read_text(encoding="utf-8") if args.text else wiki_sample(40_000)
    ids = tokenizer(text, return_tensors="pt").input_ids[0][: args.tokens + 1]
    if ids.numel() < max(args.prefill, 2):
        raise SystemExit(f"text too short: {ids.numel()} tokens")

    variants: list[tuple[str, Any]] = []
    if args.original:
        from frontier.models import load_model

        variants.append(("original fp32", load_model(args.original).model))
    variants.append((f"{record.export_format} export fp32", pruned))
    head = " (head too)" if args.quantize_head else ""
    variants.append((f"{record.export_format} export int8{head}", None))  # made below
    print(f"export: {args.export} ({record.plan.describe()})")
    print(
        f"text: {args.text or 'exllamav2 wiki.utf8 sample (not WikiText-2)'}, "
        f"{ids.numel() - 1} tokens, windows of {args.window}; threads {args.threads}"
    )
    print(f"{'variant':<28} {'weights MB':>10} {'ppl':>9} {'prefill ms':>11} {'decode ms/tok':>14}")
    for name, model in variants:
        model = int8(pruned, head=args.quantize_head) if model is None else model.eval()
        ppl = perplexity(model, ids, args.window)
        pre, dec = speed(model, ids, prefill=args.prefill, decode=args.decode, reps=args.reps)
        mb = weight_bytes(model) / 1e6
        print(f"{name:<28} {mb:>10.1f} {ppl:>9.3f} {pre:>11.1f} {dec:>14.2f}")


if __name__ == "__main__":
    main()
