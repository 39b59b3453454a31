"""Perplexity, as a ratio to the unpruned model, on fixed non-overlapping windows."""

from __future__ import annotations

import math
from typing import Any

from frontier.data.text import Role, TextSource, TokenSet, token_windows
from frontier.errors import FrontierError
from frontier.models import LoadedModel
from objectives._base import Measurement, Objective, register
from objectives._lm import cached_baseline, mean_nll


@register
class Perplexity(Objective):
    """exp(mean token NLL) over ``n_tokens`` tokens cut into windows of ``seq_len``.

    Every window is scored on its positions 1..seq_len-1 (no context crosses windows).
    ``value`` is pruned perplexity / unpruned perplexity; the baseline is computed once
    per model and token set and cached on disk.
    """

    name = "ppl"
    direction = "minimize"

    def __init__(
        self,
        text: str = "wiki-sample",
        role: Role = "search",
        n_tokens: int = 4096,
        seq_len: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.source = TextSource(text)
        self.role: Role = role
        self.n_tokens = n_tokens
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.tokens: TokenSet | None = None
        self.baseline_nll: float | None = None

    def prepare(self, lm: LoadedModel) -> None:
        seq_len = self.seq_len or min(1024, lm.max_length)
        self.tokens = token_windows(
            self.source, self.role, lm.tokenizer, n_tokens=self.n_tokens, seq_len=seq_len
        )
        tokens = self.tokens
        key = {"model": lm.fingerprint, "tokens": tokens.fingerprint}
        self.baseline_nll = float(
            cached_baseline("nll", key, lambda: mean_nll(lm.model, tokens.ids))
        )

    def nll(self, lm: LoadedModel) -> float:
        if self.tokens is None:
            raise FrontierError("perplexity objective used before prepare()")
        return mean_nll(lm.model, self.tokens.ids, batch_size=self.batch_size)

    def evaluate(self, lm: LoadedModel) -> Measurement:
        if self.tokens is None or self.baseline_nll is None:
            self.prepare(lm)
        assert self.baseline_nll is not None
        nll = self.nll(lm)
        ppl = math.exp(nll) if nll < 700 else math.inf
        base = math.exp(self.baseline_nll)
        return Measurement(
            name=self.name,
            value=ppl / base,
            direction=self.direction,
            raw=ppl,
            baseline=base,
            details={"nll": nll, "baseline_nll": self.baseline_nll},
        )

    def protocol(self) -> dict[str, Any]:
        out: dict[str, Any] = {"objective": self.name, "metric": "perplexity ratio"}
        if self.tokens is not None:
            out.update(self.tokens.describe())
        else:
            out.update({"source": self.source.label, "role": self.role, "tokens": self.n_tokens})
        return out
