"""How a projection stores its weight: the one fact the weight functions need of an adapter."""

from __future__ import annotations

from enum import Enum


class WeightLayout(str, Enum):
    """How a projection stores its weight."""

    LINEAR = "linear"  # nn.Linear: weight is [out, in]
    CONV1D = "conv1d"  # transformers' Conv1D (GPT-2): weight is [in, out]
