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
