"""The perplexity objective's baseline is the unpruned model's, whatever the caller does."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import tiny_loaded
from objectives import create
from objectives._lm import mean_nll
from objectives.perplexity import Perplexity


def test_evaluating_a_pruned_model_unprepared_never_caches_it_as_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before evaluate refused to run unprepared, it prepared itself on the model as it
    # was: pruned here. That NLL went into the on-disk baseline cache under the unpruned
    # model's fingerprint, and every later run on that model read it as the baseline.
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))
    lm = tiny_loaded("llama")
    gen = torch.Generator().manual_seed(0)
    pruner = Pruner(
        lm.model, [torch.rand(w, generator=gen) for w in lm.adapter.full_widths(lm.model)]
    )
    plan = Plan.uniform(0.5, pruner.full)

    forgot = create("ppl", n_tokens=256, seq_len=64)
    with pruner.pruned(plan), contextlib.suppress(FrontierError):
        forgot.evaluate(lm)  # a caller that forgot prepare()

    # A later, correct run on the same model: prepared on the unpruned model.
    ppl = create("ppl", n_tokens=256, seq_len=64)
    ppl.prepare(lm)
    assert isinstance(ppl, Perplexity) and ppl.tokens is not None
    unpruned_nll = mean_nll(lm.model, ppl.tokens.ids)
    with pruner.pruned(plan):
        pruned = ppl.evaluate(lm)
    assert pruned.details["nll"] != pytest.approx(unpruned_nll)  # pruning changed the model
    assert pruned.details["baseline_nll"] == pytest.approx(unpruned_nll), (
        "the pruned model's NLL was cached as the unpruned baseline"
    )


def test_the_ratio_carries_a_paired_interval_over_its_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The windows' mean is mean_nll's figure; the interval is read from each window's
    pruned-less-unpruned NLL and brackets the ratio; the unpruned model's is [1, 1]."""
    import math

    from frontier.stats import log_ratio_interval

    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))
    lm = tiny_loaded("llama")
    ppl = create("ppl", n_tokens=512, seq_len=64)
    ppl.prepare(lm)
    assert isinstance(ppl, Perplexity) and ppl.tokens is not None
    same = ppl.evaluate(lm)
    assert same.value == pytest.approx(1.0, abs=1e-12)
    assert same.details["interval"] == pytest.approx([1.0, 1.0], abs=1e-12)
    assert same.details["baseline_nll"] == pytest.approx(mean_nll(lm.model, ppl.tokens.ids))
    gen = torch.Generator().manual_seed(0)
    pruner = Pruner(
        lm.model, [torch.rand(w, generator=gen) for w in lm.adapter.full_widths(lm.model)]
    )
    with pruner.pruned(Plan.uniform(0.5, pruner.full)):
        pruned = ppl.evaluate(lm)
        whole = mean_nll(lm.model, ppl.tokens.ids)
    assert pruned.details["nll"] == pytest.approx(whole, rel=1e-6)
    diffs = pruned.details["window_log_ratios"]
    assert len(diffs) == ppl.tokens.ids.shape[0] == 8
    low, high = pruned.details["interval"]
    assert low < pruned.value < high
    want = log_ratio_interval(diffs)
    assert want is not None and (low, high) == pytest.approx((want.low, want.high), rel=1e-5)
    assert math.exp(sum(diffs) / len(diffs)) == pytest.approx(pruned.value, rel=1e-5)


def test_the_interval_is_read_at_the_objectives_confidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``confidence`` sets the interval's level: a higher one is wider around the same
    ratio, and the level is named in the details."""
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))
    lm = tiny_loaded("llama")
    gen = torch.Generator().manual_seed(0)
    pruner = Pruner(
        lm.model, [torch.rand(w, generator=gen) for w in lm.adapter.full_widths(lm.model)]
    )
    got = {}
    for level in (0.8, 0.99):
        ppl = create("ppl", n_tokens=512, seq_len=64, confidence=level)
        ppl.prepare(lm)
        with pruner.pruned(Plan.uniform(0.5, pruner.full)):
            got[level] = ppl.evaluate(lm)
        assert got[level].details["confidence"] == level
    (lo80, hi80), (lo99, hi99) = got[0.8].details["interval"], got[0.99].details["interval"]
    assert got[0.8].value == pytest.approx(got[0.99].value, rel=1e-9)
    assert lo99 < lo80 < got[0.8].value < hi80 < hi99
