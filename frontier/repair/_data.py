"""Repair text: calibration-role documents only, split by document into train and held-out.

The search is judged on the ``search`` role and the report on the ``report`` role of the
same source (:mod:`frontier.data.text`); repair reads only the ``calibration`` role, so
neither is ever trained on. The calibration documents are cut once more, by document,
into a training part and a held-out slice that decides early stopping.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch

from frontier.data.text import Role, TextSource
from frontier.errors import FrontierError

ROLE: Role = "calibration"


@dataclass(frozen=True)
class RepairData:
    """Token windows for training and for the held-out slice, from disjoint documents."""

    train: torch.Tensor  # [n, seq_len] int64
    heldout: torch.Tensor  # [m, seq_len] int64
    source: str
    seq_len: int
    train_documents: tuple[int, ...]  # indices into the calibration role's documents read
    heldout_documents: tuple[int, ...]  # (the last window may stop inside the last one)

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "role": ROLE,
            "seq_len": self.seq_len,
            "train_windows": int(self.train.shape[0]),
            "train_tokens": int(self.train.numel()),
            "train_documents": len(self.train_documents),
            "heldout_windows": int(self.heldout.shape[0]),
            "heldout_tokens": int(self.heldout.numel()),
            "heldout_documents": len(self.heldout_documents),
            "fingerprint": _digest(self.train, self.heldout),
        }


def split_documents(n: int, heldout_fraction: float) -> tuple[list[int], list[int]]:
    """Calibration document indices, (train, held-out): the held-out slice is the tail."""
    if n < 2:
        raise FrontierError(f"repair needs at least 2 calibration documents, the source has {n}")
    n_held = min(n - 1, max(1, round(n * heldout_fraction)))
    return list(range(n - n_held)), list(range(n - n_held, n))


def repair_data(
    text: str,
    tokenizer: Any,
    *,
    seq_len: int,
    heldout_tokens: int,
    heldout_fraction: float = 0.1,
    max_train_tokens: int | None = None,
) -> RepairData:
    """Windows of the calibration role of ``text``: training windows and a held-out slice."""
    source = TextSource(text)
    docs = source.documents(ROLE)
    train_idx, held_idx = split_documents(len(docs), heldout_fraction)
    train, n_train = _windows([docs[i] for i in train_idx], tokenizer, seq_len, max_train_tokens)
    held, n_held = _windows([docs[i] for i in held_idx], tokenizer, seq_len, heldout_tokens)
    if train.shape[0] == 0 or held.shape[0] == 0:
        raise FrontierError(
            f"{source.label}: too little calibration text for {seq_len}-token repair windows"
        )
    return RepairData(
        train, held, source.label, seq_len, tuple(train_idx[:n_train]), tuple(held_idx[:n_held])
    )


def _windows(
    docs: list[str], tokenizer: Any, seq_len: int, limit: int | None
) -> tuple[torch.Tensor, int]:
    """Windows of the documents joined by blank lines, and how many documents were read."""
    ids: list[int] = []
    read = 0
    for doc in docs:  # tokenised one document at a time: bounded memory, stops at the limit
        ids.extend(tokenizer(doc + "\n\n", add_special_tokens=False)["input_ids"])
        read += 1
        if limit is not None and len(ids) >= limit:
            break
    n = len(ids) // seq_len
    if limit is not None:
        n = min(n, max(1, limit // seq_len))
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len), read


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.blake2b(digest_size=12)
    for t in tensors:
        h.update(t.numpy().tobytes())
    return h.hexdigest()
