"""Perplexity, as a ratio to the unpruned model, on fixed non-overlapping windows."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from frontier.data.text import Role
from frontier.models import LoadedModel
from objectives._base import Direction, Measurement, Objective, not_prepared, register
from objectives._lm import TextWindows, cached_baseline, mean_nll, window_logits


@register
class Perplexity(TextWindows, Objective):
    """exp(mean token NLL) over ``n_tokens`` tokens cut into windows of ``seq_len``.

    Every window is scored on its positions 1..seq_len-1 (no context crosses windows).
    ``value`` is pruned perplexity / unpruned perplexity; the baseline is computed once
    per model and token set and cached on disk.
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
    ) -> None:
        super().__init__(text, role, n_tokens, seq_len, batch_size, strided)
        self.baseline_nll: float | None = None

    def prepare(self, lm: LoadedModel) -> None:
        tokens = self.windows(lm)
        key = {"model": lm.fingerprint, "tokens": tokens.fingerprint}
        self.baseline_nll = float(
            cached_baseline(
                "nll",
                key,
                lambda: mean_nll(lm.model, tokens.ids),
                code=(mean_nll, window_logits),
            )
        )

    def nll(self, lm: LoadedModel) -> float:
        if self.tokens is None:
            raise not_prepared(self.name)
        return mean_nll(lm.model, self.tokens.ids, batch_size=self.batch_size)

    def evaluate(self, lm: LoadedModel) -> Measurement:
        if self.tokens is None or self.baseline_nll is None:
            raise not_prepared(self.name)
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
        return {"objective": self.name, "metric": "perplexity ratio", **self.text_protocol()}


__all__ = ["Perplexity"]
