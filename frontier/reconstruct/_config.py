"""The local reconstruction's settings: one frozen value, recorded whole in ``compression.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from frontier.errors import FrontierError

#: ``pruned``: each layer's inputs come from the pruned model as reconstructed so far
#: (OSSCAR's "fullseq": later layers see, and fit to, what earlier layers now give them);
#: ``dense``: from the unpruned model. The target is the unpruned MLP's output on the
#: same inputs either way.
Inputs = Literal["pruned", "dense"]
INPUTS: tuple[str, ...] = get_args(Inputs)

#: what each MLP is fitted to reproduce. ``mlp``: the unpruned MLP's output on the same
#: inputs; ``stream``: the output that puts the decoder layer's output back on the
#: unpruned model's (the unpruned layer output less the pruned stream's residual), so each
#: MLP also makes up for the drift the layers before it left in the residual stream. It
#: needs ``inputs="pruned"`` and a family whose MLP output adds to the stream unchanged
#: (checked on the model: not Gemma 2 and 3, which normalise it first).
Target = Literal["mlp", "stream"]
TARGETS: tuple[str, ...] = get_args(Target)


@dataclass(frozen=True)
class ReconstructConfig:
    """How to reconstruct every pruned MLP.

    Per layer, at most ``steps`` Adam steps on ``batch_tokens`` calibration tokens drawn at
    random, the relative output error measured on the held-out windows every
    ``eval_every`` steps; a layer stops when it has not improved for ``patience``
    evaluations, at ``steps``, or when it has used its share of ``cpu_minutes`` (what is
    left, split over the layers still to do). The weights at the best held-out error are
    kept: never worse than the refit's on the held-out windows. Cosine decay of ``lr`` to
    10%; a layer whose first evaluation is no better than its start begins again at a third
    of the rate, up to ``backoffs`` times.
    """

    steps: int = 500
    batch_tokens: int = 512
    lr: float = 3e-4
    eval_every: int = 25
    patience: int = 3
    #: a layer whose first evaluation is no better than its start begins again at a third
    #: of the rate, at most this many times (``lr`` too large for it: seen on Gemma 3)
    backoffs: int = 2
    inputs: Inputs = "pruned"
    target: Target = "mlp"
    seed: int = 0
    cpu_minutes: float | None = None
    seq_len: int = 512
    # every layer's inputs are read over all of them (about two forward passes of the
    # model's worth in all): more tokens leave less of a budget to the fit
    train_tokens: int = 8192
    heldout_tokens: int = 2048
    heldout_fraction: float = 0.1
    text: str = "wiki-sample"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_tokens", "eval_every", "patience", "train_tokens"):
            if getattr(self, name) < 1:
                raise FrontierError(
                    f"reconstruct {name} must be positive, got {getattr(self, name)}"
                )
        if self.seq_len < 2 or self.heldout_tokens < 1:
            raise FrontierError("reconstruct seq_len must be >= 2 and heldout_tokens positive")
        if self.backoffs < 0:
            raise FrontierError(f"reconstruct backoffs must be >= 0, got {self.backoffs}")
        if not self.lr > 0:
            raise FrontierError(f"reconstruct lr must be positive, got {self.lr}")
        if self.inputs not in INPUTS:
            raise FrontierError(
                f"reconstruct inputs must be one of {', '.join(INPUTS)}, got {self.inputs!r}"
            )
        if self.target not in TARGETS:
            raise FrontierError(
                f"reconstruct target must be one of {', '.join(TARGETS)}, got {self.target!r}"
            )
        if self.target == "stream" and self.inputs != "pruned":
            raise FrontierError(
                "reconstruct target 'stream' fits to the pruned model's own stream: it needs "
                "inputs 'pruned'"
            )
        if self.cpu_minutes is not None and not self.cpu_minutes > 0:
            raise FrontierError(f"reconstruct cpu_minutes must be positive, got {self.cpu_minutes}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise FrontierError("reconstruct heldout_fraction must be in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReconstructConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise FrontierError(f"unknown reconstruct setting(s): {', '.join(unknown)}")
        return cls(**data)
