"""Inference speed: prefill and greedy-decode throughput, relative to the unpruned model.

Wall-clock figures depend on the machine, its load, the device and ``torch``'s thread
count: a speed-up is only meaningful between measurements taken on the same machine with
the same threads, which is why the unpruned model is re-measured in :meth:`Speed.prepare`
of every run instead of being read from a cache, and why the protocol records both.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

import torch

from frontier.errors import FrontierError
from objectives._base import Direction, Measurement, Objective, not_prepared, register

if TYPE_CHECKING:
    from frontier.models import LoadedModel

_CLOCK_FLOOR_S = 1e-9


@dataclass(frozen=True)
class Timing:
    """Median throughput over the timed repeats, and the per-repeat seconds behind it."""

    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    prefill_s: tuple[float, ...]
    decode_s: tuple[float, ...]
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefill_tokens_per_s": self.prefill_tokens_per_s,
            "decode_tokens_per_s": self.decode_tokens_per_s,
            "prefill_s": list(self.prefill_s),
            "decode_s": list(self.decode_s),
            "threads": self.threads,
        }


@register
class Speed(Objective):
    """Prefill speed-up over the unpruned model (maximised); decode figures in details.

    One repeat is a prefill of ``batch_size`` prompts of ``prompt_tokens`` random token ids
    (a forward pass with the KV cache on, computing only the last position's logits, as
    ``generate`` does), then ``new_tokens`` greedy decode steps of one token each reusing
    that cache; no stopping at EOS, so every repeat does the same work. The first
    ``warmup`` repeats are discarded (allocator, kernel selection); the median seconds of
    the remaining ``repeats`` give tokens/s (``batch_size * tokens / seconds``).
    """

    name: ClassVar[str] = "speed"
    direction: ClassVar[Direction] = "maximize"

    def __init__(
        self,
        *,
        prompt_tokens: int = 256,
        new_tokens: int = 32,
        repeats: int = 5,
        warmup: int = 1,
        batch_size: int = 1,
        seed: int = 0,
    ) -> None:
        for key, value, least in (
            ("prompt_tokens", prompt_tokens, 1),
            ("new_tokens", new_tokens, 1),
            ("repeats", repeats, 1),
            ("warmup", warmup, 0),
            ("batch_size", batch_size, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise FrontierError(f"speed: {key} must be an integer >= {least}, got {value!r}")
        self.prompt_tokens = prompt_tokens
        self.new_tokens = new_tokens
        self.repeats = repeats
        self.warmup = warmup
        self.batch_size = batch_size
        self.seed = seed
        self._baseline: Timing | None = None
        self._device: str | None = None

    def prepare(self, lm: LoadedModel) -> None:
        needed = self.prompt_tokens + self.new_tokens
        if needed > lm.max_length:
            raise FrontierError(
                f"speed: prompt_tokens + new_tokens = {needed} exceeds the model's "
                f"context of {lm.max_length} tokens"
            )
        self._device = str(lm.device)
        self._baseline = self.measure(lm)

    def evaluate(self, lm: LoadedModel) -> Measurement:
        if self._baseline is None:
            raise not_prepared(self.name)
        base, now = self._baseline, self.measure(lm)
        prefill_ratio = now.prefill_tokens_per_s / base.prefill_tokens_per_s
        decode_ratio = now.decode_tokens_per_s / base.decode_tokens_per_s
        details: dict[str, Any] = {
            "prefill_speedup": prefill_ratio,
            "decode_speedup": decode_ratio,
            "prefill_tokens_per_s": now.prefill_tokens_per_s,
            "decode_tokens_per_s": now.decode_tokens_per_s,
            "baseline_prefill_tokens_per_s": base.prefill_tokens_per_s,
            "baseline_decode_tokens_per_s": base.decode_tokens_per_s,
            "measured": now.to_dict(),
            "baseline_measured": base.to_dict(),
            **self._settings(),
        }
        return Measurement(
            name=self.name,
            value=prefill_ratio,
            direction=self.direction,
            raw=now.prefill_tokens_per_s,
            baseline=base.prefill_tokens_per_s,
            details=details,
        )

    def protocol(self) -> dict[str, Any]:
        return {
            "objective": self.name,
            **self._settings(),
            "device": self._device,
            "threads": torch.get_num_threads(),
            "note": "wall-clock figures: comparable only on the same machine and thread count",
        }

    def _settings(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "new_tokens": self.new_tokens,
            "repeats": self.repeats,
            "warmup": self.warmup,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }

    # -- measuring ---------------------------------------------------------------------
    def measure(self, lm: LoadedModel) -> Timing:
        """Time the model as it is now (no comparison with the baseline)."""
        prompt, banned = self._prompt(lm)
        prefill: list[float] = []
        decode: list[float] = []
        for i in range(self.warmup + self.repeats):
            p, d = _time_once(lm.model, prompt, self.new_tokens, banned)
            if i >= self.warmup:
                prefill.append(p)
                decode.append(d)
        # A clock too coarse to see a tiny model's step must not divide by zero.
        p_med = max(statistics.median(prefill), _CLOCK_FLOOR_S)
        d_med = max(statistics.median(decode), _CLOCK_FLOOR_S)
        return Timing(
            prefill_tokens_per_s=self.batch_size * self.prompt_tokens / p_med,
            decode_tokens_per_s=self.batch_size * self.new_tokens / d_med,
            prefill_s=tuple(prefill),
            decode_s=tuple(decode),
            threads=torch.get_num_threads(),
        )

    def _prompt(self, lm: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
        """Random ordinary token ids (fixed by ``seed``), and the ids greedy decoding skips.

        Special and added tokens are left out of both: a multimodal model's image token
        fed back in without an image would fail rather than be timed.
        """
        n_vocab = int(cast(Any, lm.model).get_input_embeddings().num_embeddings)
        tok = lm.tokenizer
        special = set(getattr(tok, "all_special_ids", []) or [])
        special |= set(getattr(tok, "added_tokens_decoder", {}) or {})
        banned = torch.tensor(sorted(i for i in special if 0 <= i < n_vocab), dtype=torch.long)
        allowed = torch.ones(n_vocab, dtype=torch.bool)
        allowed[banned] = False
        pool = allowed.nonzero().squeeze(1)
        gen = torch.Generator().manual_seed(self.seed)
        pick = torch.randint(len(pool), (self.batch_size, self.prompt_tokens), generator=gen)
        return pool[pick].to(lm.device), banned.to(lm.device)


def _synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so the clock measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _time_once(
    model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int, banned: torch.Tensor
) -> tuple[float, float]:
    """Seconds for one prefill and for ``new_tokens`` greedy decode steps after it."""
    device = prompt.device
    with torch.inference_mode():
        _synchronize(device)
        start = time.perf_counter()
        out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
        _synchronize(device)
        prefill_s = time.perf_counter() - start
        past = out.past_key_values
        token = _greedy(out.logits, banned)
        start = time.perf_counter()
        for _ in range(new_tokens):
            out = model(input_ids=token, past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = _greedy(out.logits, banned)
        _synchronize(device)
        decode_s = time.perf_counter() - start
    return prefill_s, decode_s


def _greedy(logits: torch.Tensor, banned: torch.Tensor) -> torch.Tensor:
    last = logits[:, -1, :]
    if banned.numel():
        last = last.index_fill(1, banned[banned < last.shape[1]], float("-inf"))
    return last.argmax(dim=-1, keepdim=True)


__all__ = ["Speed", "Timing"]
