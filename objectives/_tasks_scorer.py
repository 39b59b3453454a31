"""A faster scorer of lm-eval's log-likelihood requests: each context is read once.

lm-eval's ``HFLM`` runs ``(context + continuation)[:-1]`` through the model for every
request and takes logits over the whole vocabulary at every position, so a four-choice
question reads its context four times. :class:`SharedContextLM` is ``HFLM`` with its
``_loglikelihood_tokens`` replaced for the requests that fit that shape. The requests
are grouped by their context tokens, and a batch of groups is scored in two passes:

1. each group's prefix runs once, left-padded (every row then ends at its last token),
   into the model's KV cache. The prefix is the context, whose last position scores the
   first token of every continuation; a context with one continuation only (WinoGrande,
   LAMBADA) has nothing to share, and its prefix is ``(context + continuation)[:-1]``,
   whose last positions score the whole continuation, as in HFLM.
2. each continuation of a shared context but its last token (``continuation[:-1]``)
   runs after its context's row of the cache (rows repeated as needed, the longest
   continuations first so that a batch pads little); its positions score its tokens
   after the first.

Logits are kept only where a position scores a token, and through the model's own head
(its forward's ``logits_to_keep``), so a scaled or soft-capped head (Gemma 2 and 3's
``final_logit_softcapping``) is applied exactly as its forward applies it. The token
boundaries are HFLM's: its ``loglikelihood`` (lm-eval's ``TemplateLM``: trailing spaces of
a context move to the continuation, ``_encode_pair``) tokenizes before this scorer sees a
request. The answers are HFLM's ``(sum of log-probabilities, whether every token is the
argmax)``, in its softmax dtype and autocast.

HFLM's own code scores the rest: ``loglikelihood_rolling``'s windows (they come without
request strings), a context and continuation longer than the model's window (HFLM cuts
them from the left), a seq2seq model, a forward without ``logits_to_keep`` or a cache,
and a batch size that is not a number. ``routes`` counts the requests of each path.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM

from frontier.memory import LOGITS_BUDGET_BYTES

# (request strings or None, context tokens, continuation tokens), as HFLM receives them
Request = tuple[Any, list[int], list[int]]
Answer = tuple[float, bool]

#: What one forward costs beside its positions, in positions: every weight read once
#: (about 35 positions' compute for SmolLM2-135M on this project's 2-core CPUs). Batches
#: are cut where their padding would cost more than one more forward.
FORWARD_COST = 32


@dataclass(frozen=True)
class Group:
    """The requests (indices into one call's list) that share a context."""

    context: tuple[int, ...]
    members: tuple[int, ...]

    @property
    def shared(self) -> bool:
        return len(self.members) > 1

    def prefix(self, requests: Sequence[Request]) -> list[int]:
        """What the first pass reads: the context, with a lone continuation but its last
        token."""
        if self.shared:
            return list(self.context)
        return list(self.context) + requests[self.members[0]][2][:-1]

    def scored(self, requests: Sequence[Request]) -> int:
        """How many of the prefix's last positions score a token."""
        return 1 if self.shared else len(requests[self.members[0]][2])


def group_by_context(requests: Sequence[Request], keep: Sequence[int]) -> list[Group]:
    """The requests ``keep`` grouped by their context tokens, longest prefix first (so a
    batch pads little), members in their order in ``requests``."""
    members: dict[tuple[int, ...], list[int]] = {}
    for i in keep:
        members.setdefault(tuple(requests[i][1]), []).append(i)
    groups = [Group(ctx, tuple(idx)) for ctx, idx in members.items()]
    return sorted(groups, key=lambda g: (-len(g.prefix(requests)), g.context, g.members))


def chunks(
    lengths: Sequence[int], kept: Sequence[int], *, rows: int, positions: int
) -> list[range]:
    """Sequences (their ``lengths``, and the logits each keeps), in order, cut into runs of
    one forward each at the least cost: a forward costs :data:`FORWARD_COST` plus its
    padded positions (its sequences x the longest). A run has at most ``rows``
    sequences, and its logits (its sequences x the most one keeps) fit ``positions``
    unless one sequence alone does not."""
    n = len(lengths)
    best = [0.0] + [math.inf] * n  # best[j]: the least cost of the first j sequences
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = most = 0
        for i in range(j - 1, max(j - 1 - rows, -1), -1):  # the last run is [i, j)
            longest, most = max(longest, lengths[i]), max(most, kept[i])
            if j - i > 1 and (j - i) * most > positions:
                break
            cost = best[i] + FORWARD_COST + (j - i) * longest
            if cost < best[j]:
                best[j], cut[j] = cost, i
    runs: list[range] = []
    while n:
        runs.append(range(cut[n], n))
        n = cut[n]
    return runs[::-1]


def left_padded(seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask [rows, longest], every row ending at its last token."""
    longest = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), longest), dtype=torch.long)
    mask = torch.zeros((len(seqs), longest), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, longest - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, longest - len(seq) :] = 1
    return ids, mask


class SharedContextLM(HFLM):
    """``HFLM`` that reads each context once (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.routes: Counter[str] = Counter()
        self._forward_args: tuple[str, ...] | None = None

    # -- what fits -----------------------------------------------------------------------

    def cache_kwarg(self) -> str | None:
        """The name the model's forward takes its KV cache by (``cache`` in transformers
        5.2x, ``past_key_values`` before), or None where this scorer cannot serve it."""
        if self._forward_args is None:
            self._forward_args = tuple(inspect.signature(self.model.forward).parameters)
        if self.backend != "causal" or "logits_to_keep" not in self._forward_args:
            return None
        return next((n for n in ("cache", "past_key_values") if n in self._forward_args), None)

    def fits(self, request: Request) -> bool:
        key, context, continuation = request
        return (
            key is not None  # loglikelihood_rolling's windows
            and len(context) > 0
            and len(continuation) > 0
            and len(context) + len(continuation) <= self.max_length + 1  # HFLM would cut
        )

    # -- lm-eval's entry point -----------------------------------------------------------

    def _loglikelihood_tokens(
        self,
        requests: list[Request],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[Answer]:
        usable = self.cache_kwarg() is not None and isinstance(self.batch_size, int)
        mine = [i for i, r in enumerate(requests) if usable and self.fits(r)]
        rest = sorted(set(range(len(requests))) - set(mine))
        answers: dict[int, Answer] = {}
        if rest:
            theirs = super()._loglikelihood_tokens(
                [requests[i] for i in rest], disable_tqdm=disable_tqdm, override_bs=override_bs
            )
            answers.update(zip(rest, theirs, strict=True))
            self.routes["hflm"] += len(rest)
        groups = group_by_context(requests, mine)
        lengths = [len(g.prefix(requests)) for g in groups]
        kept = [g.scored(requests) for g in groups]
        for run in chunks(lengths, kept, rows=self.batch_size, positions=self._positions()):
            for i, answer in self._score([groups[k] for k in run], requests):
                answers[i] = answer
                self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
        if mine:
            self.routes["shared"] += len(mine)
        return [answers[i] for i in range(len(requests))]

    def _positions(self) -> int:
        """Positions of fp32 logits a batch may keep (frontier.memory's budget)."""
        vocab = int(self.model.get_output_embeddings().weight.shape[0])
        return max(1, LOGITS_BUDGET_BYTES // (4 * vocab))

    # -- the two passes ------------------------------------------------------------------

    def _forward(self, **kwargs: Any) -> Any:
        with (
            torch.no_grad(),
            torch.autocast(
                device_type=self.device.type,
                dtype=self.mixed_precision_dtype,
                enabled=self.mixed_precision_dtype is not None,
            ),
        ):
            return self.model(**kwargs)

    def _log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)

    def _score(
        self, batch: Sequence[Group], requests: Sequence[Request]
    ) -> Iterator[tuple[int, Answer]]:
        """Every request of ``batch``'s groups: its (log-likelihood, is-greedy)."""
        device = self.device
        cache_name = self.cache_kwarg()
        assert cache_name is not None
        rows = sorted(
            ((g, i) for g, group in enumerate(batch) if group.shared for i in group.members),
            key=lambda row: -len(requests[row[1]][2]),
        )
        rows = [(g, i) for g, i in rows if len(requests[i][2]) > 1]
        # 1. the prefixes; the last `keep` positions of every row, of which a row's last
        # `scored` score its tokens
        ids, mask = left_padded([g.prefix(requests) for g in batch])
        mask = mask.to(device)
        keep = max(g.scored(requests) for g in batch)
        out = self._forward(
            input_ids=ids.to(device),
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            use_cache=bool(rows),
            logits_to_keep=keep,
        )
        logprobs = self._log_softmax(out.logits[:, -keep:])  # [groups, keep, vocab]
        greedy = logprobs.argmax(dim=-1)
        cache = getattr(out, cache_name) if rows else None
        del out
        first: dict[int, tuple[torch.Tensor, bool]] = {}  # a shared context's first tokens
        for g, group in enumerate(batch):
            for i in group.members:
                cont = torch.tensor(requests[i][2], dtype=torch.long, device=device)
                n = 1 if group.shared else len(cont)
                lp = logprobs[g, keep - n :].gather(-1, cont[:n, None]).squeeze(-1)
                hit = bool((greedy[g, keep - n :] == cont[:n]).all())
                if len(cont) == n:
                    yield i, (float(lp.sum()), hit)
                else:
                    first[i] = (lp, hit)
        del logprobs, greedy
        # 2. the continuations of the shared contexts after their rows of the cache, the
        # longest first, in batches; each batch reads its own copy of the cache but the last
        tails = [len(requests[i][2]) - 1 for _, i in rows]
        runs = chunks(tails, tails, rows=self.batch_size, positions=self._positions())
        for k, run in enumerate(runs):
            sub = [rows[r] for r in run]
            rows_cache = cache if k == len(runs) - 1 else copy.deepcopy(cache)
            yield from self._continue(sub, requests, batch, mask, rows_cache, first)

    def _continue(
        self,
        rows: Sequence[tuple[int, int]],
        requests: Sequence[Request],
        batch: Sequence[Group],
        mask: torch.Tensor,
        cache: Any,
        first: dict[int, tuple[torch.Tensor, bool]],
    ) -> Iterator[tuple[int, Answer]]:
        """Requests ``rows`` ((group, request) pairs): their continuations but the last
        token after their contexts' rows of ``cache`` (which this consumes)."""
        device = self.device
        tails = [requests[i][2][:-1] for _, i in rows]
        width = max(len(t) for t in tails)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        tail_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, tail in enumerate(tails):
            ids[r, : len(tail)] = torch.tensor(tail, dtype=torch.long)
            tail_mask[r, : len(tail)] = 1
        which = torch.tensor([g for g, _ in rows], device=device)
        start = torch.tensor([len(batch[g].context) for g, _ in rows]).unsqueeze(1)
        tail_mask = tail_mask.to(device)
        cache.batch_select_indices(which)  # each row its context's (repeated as needed)
        out = self._forward(
            input_ids=ids.to(device),
            attention_mask=torch.cat([mask[which], tail_mask], dim=1),
            position_ids=(start + torch.arange(width)).to(device) * tail_mask,
            use_cache=True,
            logits_to_keep=0,
            **{self.cache_kwarg() or "cache": cache},
        )
        logprobs = self._log_softmax(out.logits)  # [rows, width, vocab]
        greedy = logprobs.argmax(dim=-1)
        for r, (_, i) in enumerate(rows):
            cont = torch.tensor(requests[i][2], dtype=torch.long, device=device)
            n = len(cont) - 1
            lp, hit = first[i]
            lp = torch.cat([lp, logprobs[r, :n].gather(-1, cont[1:, None]).squeeze(-1)])
            hit = hit and bool((greedy[r, :n] == cont[1:]).all())
            yield i, (float(lp.sum()), hit)


__all__ = ["FORWARD_COST", "Group", "SharedContextLM", "chunks", "group_by_context", "left_padded"]
