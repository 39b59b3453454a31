"""Shared forward passes over fixed token windows, memory-bounded for large vocabularies."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from frontier.cache import cached_json, code_digest
from frontier.data.text import Role, TextSource, TokenSet, token_windows
from frontier.memory import LOGITS_BUDGET_BYTES
from frontier.models import LoadedModel


class TextWindows:
    """Which text an objective reads: one role of a source, cut into fixed windows.

    Shared by the objectives that score the model's next-token distribution (perplexity,
    KL), so that both read text the same way. The windows are tokenised on first use,
    with the model's tokenizer; ``seq_len`` (default 1,024) is capped at the model's
    context. ``strided``: windows spread evenly over the whole role's text
    (:func:`~frontier.data.text.token_windows`). ``skip``: the windows start that many
    tokens into the role's text.
    """

    def __init__(
        self,
        text: str,
        role: Role,
        n_tokens: int,
        seq_len: int | None,
        batch_size: int | None,
        strided: bool = False,
        skip: int = 0,
    ) -> None:
        self.source = TextSource(text)
        self.strided = strided
        self.skip = skip
        self.role: Role = role
        self.n_tokens = n_tokens
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.tokens: TokenSet | None = None

    def windows(self, lm: LoadedModel) -> TokenSet:
        if self.tokens is None:
            seq_len = min(self.seq_len or 1024, lm.max_length)
            self.tokens = token_windows(
                self.source,
                self.role,
                lm.tokenizer,
                n_tokens=self.n_tokens,
                seq_len=seq_len,
                strided=self.strided,
                skip=self.skip,
            )
        return self.tokens

    def text_protocol(self) -> dict[str, Any]:
        if self.tokens is not None:
            return {**self.tokens.describe(), **({"skip": self.skip} if self.skip else {})}
        return {
            **({"skip": self.skip} if self.skip else {}),
            "source": self.source.label,
            "role": self.role,
            "tokens": self.n_tokens,
            **({"layout": "strided"} if self.strided else {}),
        }


# Logits of a batch are [batch, seq_len, vocab] fp32; each batch is kept under
# LOGITS_BUDGET_BYTES (1 GiB; frontier.memory counts it in a trial's peak).


def batch_size_for(seq_len: int, vocab: int, requested: int | None = None) -> int:
    fit = max(1, LOGITS_BUDGET_BYTES // (seq_len * vocab * 4))
    return max(1, min(fit, requested)) if requested else fit


@torch.inference_mode()
def window_logits(
    model: Any, ids: torch.Tensor, *, batch_size: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (fp32 logits [b, T-1, V] predicting positions 1.., their targets [b, T-1])."""
    device = next(model.parameters()).device
    vocab = int(model.get_output_embeddings().weight.shape[0])
    bs = batch_size_for(ids.shape[1], vocab, batch_size)
    for start in range(0, ids.shape[0], bs):
        chunk = ids[start : start + bs].to(device)
        logits = model(input_ids=chunk, use_cache=False).logits[:, :-1].float()
        yield logits, chunk[:, 1:]


def mean_nll(model: Any, ids: torch.Tensor, *, batch_size: int | None = None) -> float:
    """Mean next-token negative log-likelihood (nats) over every window's positions 1..T-1."""
    total = 0.0
    count = 0
    for logits, targets in window_logits(model, ids, batch_size=batch_size):
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
        )
        total += float(loss)
        count += targets.numel()
    return total / count


def window_nlls(model: Any, ids: torch.Tensor, *, batch_size: int | None = None) -> list[float]:
    """Each window's mean next-token negative log-likelihood (nats) over its positions
    1..T-1; on equal windows their mean is :func:`mean_nll`'s figure."""
    out: list[float] = []
    for logits, targets in window_logits(model, ids, batch_size=batch_size):
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
        )
        out.extend(loss.view(targets.shape).double().mean(-1).tolist())
    return out


# Bump when what a cached baseline means changes in a way its code digest cannot see.
BASELINE_PROTOCOL = 2


def cached_baseline(
    kind: str,
    key: dict[str, Any],
    compute: Any,
    *,
    code: Sequence[Any] = (),
) -> Any:
    """A baseline figure of the unpruned model, cached as JSON under $FRONTIER_HOME.

    The key carries :data:`BASELINE_PROTOCOL` and the digest of ``code`` (the functions
    or modules that compute the figure) besides ``key``.
    """
    key = {**key, "baseline_protocol": BASELINE_PROTOCOL, "code": code_digest(code)}
    return cached_json("baselines", kind, key, compute)
