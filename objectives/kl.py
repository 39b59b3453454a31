"""KL divergence of the pruned model's next-token distribution from the unpruned one's."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from frontier.data.text import Role
from frontier.errors import FrontierError
from frontier.models import LoadedModel
from objectives._base import Direction, Measurement, Objective, not_prepared, register
from objectives._lm import TextWindows, window_logits


@register
class KLDivergence(TextWindows, Objective):
    """Mean KL(P_unpruned || Q_pruned) per token, in nats, on fixed windows.

    Storing the unpruned model's full distributions would take tokens x vocab floats
    (1 GB for Gemma's 262k vocabulary at 1k tokens), so the baseline keeps, per token,
    its ``top_k`` most likely tokens; the rest of the vocabulary is merged into one
    bucket. KL over this coarsened distribution is a lower bound on the full KL (data
    processing inequality), tight when the top-k hold almost all the mass; the mass
    they hold is reported.
    """

    name = "kl"
    direction: ClassVar[Direction] = "minimize"

    def __init__(
        self,
        text: str = "wiki-sample",
        role: Role = "search",
        n_tokens: int = 2048,
        seq_len: int | None = None,
        top_k: int = 256,
        batch_size: int | None = None,
        strided: bool = False,
    ) -> None:
        super().__init__(text, role, n_tokens, seq_len, batch_size, strided)
        self.top_k = top_k
        self._ref: list[tuple[torch.Tensor, torch.Tensor]] = []  # (indices, log p) per batch
        self._mass = 0.0

    def prepare(self, lm: LoadedModel) -> None:
        self._ref = []
        mass = []
        for logits, _ in window_logits(lm.model, self.windows(lm).ids, batch_size=self.batch_size):
            logp = torch.log_softmax(logits, dim=-1)
            top = logp.topk(min(self.top_k, logp.shape[-1]), dim=-1)
            self._ref.append((top.indices, top.values))
            mass.append(top.values.exp().sum(-1).flatten())
        self._mass = float(torch.cat(mass).mean())

    def evaluate(self, lm: LoadedModel) -> Measurement:
        if self.tokens is None or not self._ref:
            raise not_prepared(self.name)
        total = 0.0
        count = 0
        batches = window_logits(lm.model, self.tokens.ids, batch_size=self.batch_size)
        for (logits, _), (idx, logp) in zip(batches, self._ref, strict=True):
            logq_all = torch.log_softmax(logits, dim=-1)
            logq = logq_all.gather(-1, idx)
            p = logp.exp()
            p_rest = (1 - p.sum(-1)).clamp_min(0)
            q_rest = (1 - logq.exp().sum(-1)).clamp_min(1e-30)
            kl = (p * (logp - logq)).sum(-1)
            kl = kl + torch.where(
                p_rest > 0,
                p_rest * (p_rest.clamp_min(1e-30).log() - q_rest.log()),
                torch.zeros_like(kl),
            )
            total += float(kl.sum())
            count += kl.numel()
        value = total / count
        if value != value:  # NaN
            raise FrontierError("KL divergence is NaN: the pruned model produced NaN logits")
        return Measurement(
            name=self.name,
            value=max(value, 0.0),
            direction=self.direction,
            raw=max(value, 0.0),
            baseline=0.0,
            details={"top_k": self.top_k, "top_k_mass": self._mass},
        )

    def protocol(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "objective": self.name,
            "metric": "mean KL(unpruned || pruned), nats/token, top-k coarsened",
            "top_k": self.top_k,
            "top_k_mass": self._mass,
        }
        out.update(self.text_protocol())
        return out


__all__ = ["KLDivergence"]
