"""Perplexity, as a ratio to the unpruned model, on fixed non-overlapping windows."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from frontier.data.text import Role
from frontier.models import LoadedModel
from frontier.stats import DEFAULT_CONFIDENCE, log_ratio_interval
from objectives._base import Direction, Measurement, Objective, not_prepared, register
from objectives._lm import TextWindows, cached_baseline, window_logits, window_nlls


@register
class Perplexity(TextWindows, Objective):
    """exp(mean token NLL) over ``n_tokens`` tokens cut into windows of ``seq_len``.

    Every window is scored on its positions 1..seq_len-1 (no context crosses windows).
    ``value`` is pruned perplexity / unpruned perplexity; the baseline is computed once
    per model and token set and cached on disk, window by window. ``details["interval"]``
    is the ratio's paired interval over the windows (:func:`frontier.stats.log_ratio_interval`,
    two-sided at ``confidence``), and ``details["window_log_ratios"]`` each window's log
    ratio, from which it can be read again at another level.
    """

    name = "ppl"
    direction: ClassVar[Direction] = "minimize"

    def __init__(
        self,
        text: str = "wiki-sample",
        role: Role = "search",
        n_tokens: int = 4096,
        seq_len: int | None = None,
        batch_size: int | None = None,
        strided: bool = False,
        skip: int = 0,
        confidence: float = DEFAULT_CONFIDENCE,
    ) -> None:
        super().__init__(text, role, n_tokens, seq_len, batch_size, strided, skip)
        self.confidence = confidence
        self.baseline_nll: float | None = None
        self.baseline_windows: list[float] = []

    def prepare(self, lm: LoadedModel) -> None:
        tokens = self.windows(lm)
        key = {"model": lm.fingerprint, "tokens": tokens.fingerprint}
        self.baseline_windows = [
            float(x)
            for x in cached_baseline(
                "window-nll",
                key,
                lambda: window_nlls(lm.model, tokens.ids),
                code=(window_nlls, window_logits),
            )
        ]
        self.baseline_nll = sum(self.baseline_windows) / len(self.baseline_windows)

    def nll(self, lm: LoadedModel) -> float:
        windows = self._windows(lm)
        return sum(windows) / len(windows)

    def _windows(self, lm: LoadedModel) -> list[float]:
        if self.tokens is None:
            raise not_prepared(self.name)
        return window_nlls(lm.model, self.tokens.ids, batch_size=self.batch_size)

    def evaluate(self, lm: LoadedModel) -> Measurement:
        if self.tokens is None or self.baseline_nll is None:
            raise not_prepared(self.name)
        windows = self._windows(lm)
        nll = sum(windows) / len(windows)
        ppl = math.exp(nll) if nll < 700 else math.inf
        base = math.exp(self.baseline_nll)
        diffs = [p - b for p, b in zip(windows, self.baseline_windows, strict=True)]
        details: dict[str, Any] = {"nll": nll, "baseline_nll": self.baseline_nll}
        finite = all(map(math.isfinite, diffs))
        interval = log_ratio_interval(diffs, self.confidence) if finite else None
        if interval is not None:
            details["interval"] = [interval.low, interval.high]
            details["confidence"] = interval.confidence
            details["window_log_ratios"] = [round(d, 6) for d in diffs]
        return Measurement(
            name=self.name,
            value=ppl / base,
            direction=self.direction,
            raw=ppl,
            baseline=base,
            details=details,
        )

    def protocol(self) -> dict[str, Any]:
        return {"objective": self.name, "metric": "perplexity ratio", **self.text_protocol()}


__all__ = ["Perplexity"]
