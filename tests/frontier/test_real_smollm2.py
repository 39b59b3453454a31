"""The engine on the real SmolLM2-135M: activation-aware scores must beat naive ones."""

from __future__ import annotations

import math

import pytest

from frontier.data.text import TextSource, token_windows
from frontier.importance import compute_scores
from frontier.models import LoadedModel
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from objectives._lm import mean_nll

pytestmark = pytest.mark.slow


def test_activation_scores_beat_magnitude_and_random_at_75_percent(smollm2: LoadedModel) -> None:
    src = TextSource()
    calibration = token_windows(src, "calibration", smollm2.tokenizer, n_tokens=8192, seq_len=512)
    evaluation = token_windows(src, "search", smollm2.tokenizer, n_tokens=2048, seq_len=512)
    base = mean_nll(smollm2.model, evaluation.ids)
    assert 10 < math.exp(base) < 30  # a real pretrained model, not random weights
    ratios = {}
    for criterion in ("activation", "fluctuation", "magnitude", "random"):
        scores = compute_scores(smollm2, criterion, calibration)
        pruner = Pruner(smollm2.model, scores.per_layer)
        with pruner.pruned(Plan.uniform(0.75, pruner.full)):
            ratios[criterion] = math.exp(mean_nll(smollm2.model, evaluation.ids) - base)
    print("ppl ratios at 75% kept:", ratios)
    assert ratios["activation"] < 3.0
    assert ratios["activation"] * 5 < ratios["random"]
    assert ratios["activation"] * 5 < ratios["magnitude"]
    assert ratios["fluctuation"] * 5 < ratios["random"]
    assert math.isclose(mean_nll(smollm2.model, evaluation.ids), base, rel_tol=0, abs_tol=0)
