"""The repair's settings: one frozen value, recorded whole in ``compression.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from frontier.errors import FrontierError


@dataclass(frozen=True)
class RepairConfig:
    """How to distil a pruned model towards the unpruned one.

    ``steps`` optimiser steps of ``batch_windows`` windows of ``seq_len`` calibration
    tokens each, stopped early when the held-out loss has not improved for ``patience``
    evaluations (one every ``eval_every`` steps) or when the process has used
    ``cpu_minutes`` of CPU time. AdamW with linear warm-up and cosine decay to 10% of ``lr``.
    """

    steps: int = 200
    batch_windows: int = 4
    seq_len: int = 512
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 10
    temperature: float = 1.0
    ce_weight: float = 0.0
    heldout_tokens: int = 4096
    heldout_fraction: float = 0.1
    eval_every: int = 25
    patience: int = 2
    seed: int = 0
    cpu_minutes: float | None = None
    text: str = "wiki-sample"
    micro_batch: int | None = None  # windows per forward; default fits a logits budget
    bf16: bool = True  # bf16 autocast on CUDA (fp32 master weights); CPU is always fp32

    def __post_init__(self) -> None:
        for name in ("steps", "batch_windows", "seq_len", "heldout_tokens", "eval_every"):
            if getattr(self, name) < 1:
                raise FrontierError(f"repair {name} must be positive, got {getattr(self, name)}")
        if self.seq_len < 2:
            raise FrontierError("repair seq_len must be at least 2")
        if not self.lr > 0:
            raise FrontierError(f"repair lr must be positive, got {self.lr}")
        if not self.temperature > 0:
            raise FrontierError(f"repair temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.ce_weight <= 1.0:
            raise FrontierError(f"repair ce_weight must be in [0, 1], got {self.ce_weight}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise FrontierError("repair heldout_fraction must be in (0, 1)")
        if self.patience < 1 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise FrontierError("repair patience must be >= 1, warmup and weight decay >= 0")
        if self.cpu_minutes is not None and not self.cpu_minutes > 0:
            raise FrontierError(f"repair cpu_minutes must be positive, got {self.cpu_minutes}")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise FrontierError("repair micro_batch must be positive")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RepairConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise FrontierError(f"unknown repair setting(s): {', '.join(unknown)}")
        return cls(**data)
