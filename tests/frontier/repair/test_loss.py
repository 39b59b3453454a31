"""The distillation loss as a pure function of logits."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from frontier.repair import distill_loss


def _logits(seed: int, shape: tuple[int, ...] = (2, 5, 11)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 3


def test_kl_is_zero_for_the_teacher_itself_and_positive_otherwise() -> None:
    t, targets = _logits(0), torch.randint(0, 11, (2, 5))
    assert float(distill_loss(t, t, targets).kl) == pytest.approx(0.0, abs=1e-6)
    assert float(distill_loss(_logits(1), t, targets).kl) > 0.1


def test_kl_matches_its_definition_at_a_temperature() -> None:
    s, t, targets = _logits(1), _logits(0), torch.randint(0, 11, (2, 5))
    temp = 2.0
    p = F.softmax(t / temp, -1)
    want = (p * (p.log() - F.log_softmax(s / temp, -1))).sum(-1).mean()
    parts = distill_loss(s, t, targets, temperature=temp)
    assert float(parts.kl) == pytest.approx(float(want), rel=1e-5)
    assert float(parts.loss) == pytest.approx(temp**2 * float(want), rel=1e-5)


def test_ce_weight_mixes_cross_entropy_in() -> None:
    s, t, targets = _logits(1), _logits(0), torch.randint(0, 11, (2, 5))
    ce = float(F.cross_entropy(s.reshape(-1, 11), targets.reshape(-1)))
    only_ce = distill_loss(s, t, targets, ce_weight=1.0)
    assert float(only_ce.loss) == pytest.approx(ce, rel=1e-6)
    half = distill_loss(s, t, targets, ce_weight=0.5)
    assert float(half.loss) == pytest.approx(0.5 * float(half.kl) + 0.5 * ce, rel=1e-6)
    assert math.isfinite(float(half.ce))
