"""The distillation loss: KL to the unpruned model's logits at a temperature, CE mixed in.

Pure functions of logits, testable without a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossParts:
    """The mixed loss (what is optimised) and its parts, each a mean per token."""

    loss: torch.Tensor
    kl: torch.Tensor  # KL(teacher_T || student_T), nats/token
    ce: torch.Tensor  # student cross-entropy on the text's next tokens


@dataclass(frozen=True)
class HeldOut:
    """The held-out slice's figures: the optimised loss and its parts (nats/token)."""

    loss: float
    kl: float  # at the training temperature
    ce: float

    def to_dict(self) -> dict[str, float]:
        return {"loss": self.loss, "kl": self.kl, "ce": self.ce}


def distill_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    targets: torch.Tensor,
    *,
    temperature: float = 1.0,
    ce_weight: float = 0.0,
) -> LossParts:
    """``(1 - ce_weight) * T^2 * KL(p_T || q_T) + ce_weight * CE(q)``, means over tokens.

    ``student`` and ``teacher`` are logits ``[..., V]`` for the same positions, ``targets``
    the next tokens ``[...]``. The T^2 factor keeps the KL's gradient scale independent of
    the temperature (Hinton et al., 2015).
    """
    vocab = student.shape[-1]
    s = student.float().reshape(-1, vocab)
    t = teacher.float().reshape(-1, vocab)
    logq = F.log_softmax(s / temperature, dim=-1)
    logp = F.log_softmax(t / temperature, dim=-1)
    kl = F.kl_div(logq, logp, reduction="sum", log_target=True) / s.shape[0]
    ce = F.cross_entropy(s, targets.reshape(-1))
    loss = (1.0 - ce_weight) * temperature**2 * kl + ce_weight * ce
    return LossParts(loss, kl, ce)
