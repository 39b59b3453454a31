"""Perplexity and KL against independent computations on the same windows.

Perplexity: transformers' own ``labels=`` loss (it shifts logits and targets itself).
KL: the full-vocabulary divergence from the two models' softmaxes; the objective's
top-k coarsened KL must equal it when the top k cover the vocabulary, and be a lower
bound below it otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from frontier import settings
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import VOCAB, tiny_loaded
from objectives import create
from objectives._lm import cached_baseline, window_logits

FAMILIES = ("llama", "gpt2")


@contextmanager
def _pruned(lm, keep: float = 0.5) -> Iterator[None]:  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(0)
    pruner = Pruner(
        lm.model, [torch.rand(w, generator=gen) for w in lm.adapter.full_widths(lm.model)]
    )
    with pruner.pruned(Plan.uniform(keep, pruner.full)):
        yield


def _labels_nll(model: torch.nn.Module, ids: torch.Tensor) -> float:
    """Mean next-token NLL by transformers' own loss, window by window (equal lengths)."""
    with torch.no_grad():
        losses = [float(model(input_ids=w[None], labels=w[None]).loss) for w in ids]
    return sum(losses) / len(losses)


@pytest.mark.parametrize("family", FAMILIES)
def test_perplexity_is_transformers_labels_loss(family: str) -> None:
    lm = tiny_loaded(family)
    obj = create("ppl", n_tokens=256, seq_len=64)
    obj.prepare(lm)
    tokens = obj.tokens  # type: ignore[attr-defined]
    assert tuple(tokens.ids.shape) == (4, 64)  # non-overlapping windows, none padded
    base = _labels_nll(lm.model, tokens.ids)
    m0 = obj.evaluate(lm)
    assert m0.baseline == pytest.approx(math.exp(base), rel=1e-5)
    assert m0.value == pytest.approx(1.0, rel=1e-6)
    with _pruned(lm):
        pruned = _labels_nll(lm.model, tokens.ids)
        m = obj.evaluate(lm)
    assert m.raw == pytest.approx(math.exp(pruned), rel=1e-5)
    assert m.value == pytest.approx(math.exp(pruned - base), rel=1e-5)
    assert m.value > 1.0


def _full_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) per position over the whole vocabulary."""
    logp = torch.log_softmax(p_logits.double(), dim=-1)
    logq = torch.log_softmax(q_logits.double(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def _coarse_kl(p_logits: torch.Tensor, q_logits: torch.Tensor, k: int) -> torch.Tensor:
    """KL between P and Q each reduced to P's top-k tokens plus one bucket for the rest."""
    p = torch.softmax(p_logits.double(), dim=-1).reshape(-1, p_logits.shape[-1])
    q = torch.softmax(q_logits.double(), dim=-1).reshape(-1, q_logits.shape[-1])
    out = []
    for pr, qr in zip(p, q, strict=True):  # one position at a time: plain, not fast
        top = pr.topk(k).indices
        pk, qk = pr[top], qr[top]
        kl = (pk * (pk / qk).log()).sum()
        p_rest, q_rest = 1 - pk.sum(), 1 - qk.sum()
        if p_rest > 1e-12:
            kl = kl + p_rest * (p_rest / q_rest).log()
        out.append(kl)
    return torch.stack(out)


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Logits predicting positions 1.. of every window, computed here (not window_logits)."""
    with torch.no_grad():
        return torch.cat([model(input_ids=w[None]).logits[:, :-1] for w in ids])


@pytest.mark.parametrize("family", FAMILIES)
def test_kl_equals_full_vocabulary_kl_when_top_k_covers_it(family: str) -> None:
    lm = tiny_loaded(family)
    obj = create("kl", n_tokens=128, seq_len=32, top_k=VOCAB)
    obj.prepare(lm)
    ids = obj.tokens.ids  # type: ignore[attr-defined]
    base = _logits(lm.model, ids)
    assert obj.evaluate(lm).value == pytest.approx(0.0, abs=1e-6)
    with _pruned(lm):
        full = float(_full_kl(base, _logits(lm.model, ids)).mean())
        m = obj.evaluate(lm)
    assert full > 1e-3
    assert m.value == pytest.approx(full, rel=1e-4)
    assert m.details["top_k_mass"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_top_k_kl_is_the_coarsened_kl_and_a_lower_bound(family: str) -> None:
    lm = tiny_loaded(family)
    k = 8
    obj = create("kl", n_tokens=64, seq_len=32, top_k=k)
    obj.prepare(lm)
    ids = obj.tokens.ids  # type: ignore[attr-defined]
    base = _logits(lm.model, ids)
    with _pruned(lm):
        pruned = _logits(lm.model, ids)
        m = obj.evaluate(lm)
    full = float(_full_kl(base, pruned).mean())
    coarse = float(_coarse_kl(base, pruned, k).mean())
    assert 0 < coarse < full
    assert m.value == pytest.approx(coarse, rel=1e-4)
    mass = torch.softmax(base.double(), -1).topk(k, dim=-1).values.sum(-1).mean()
    assert m.details["top_k_mass"] == pytest.approx(float(mass), rel=1e-5)


def test_window_logits_predict_the_next_token() -> None:
    lm = tiny_loaded("llama")
    ids = torch.randint(3, VOCAB, (3, 16), generator=torch.Generator().manual_seed(1))
    got = list(window_logits(lm.model, ids, batch_size=2))
    assert [tuple(t.shape) for _, t in got] == [(2, 15), (1, 15)]
    logits = torch.cat([lg for lg, _ in got])
    targets = torch.cat([t for _, t in got])
    assert torch.equal(targets, ids[:, 1:])
    assert torch.allclose(logits, _logits(lm.model, ids), atol=1e-5)


def test_cached_baseline_is_keyed_by_the_code_that_computed_it() -> None:
    calls: list[int] = []

    def old() -> float:
        calls.append(1)
        return 1.0

    def new() -> float:
        calls.append(2)
        return 2.0

    key = {"model": "m", "tokens": "t"}
    assert cached_baseline("nll", key, old, code=(old,)) == 1.0
    assert cached_baseline("nll", key, old, code=(old,)) == 1.0  # read back, not recomputed
    assert calls == [1]
    assert cached_baseline("nll", key, new, code=(new,)) == 2.0  # new code: measured afresh
    assert calls == [1, 2]
    assert len(list((settings.home() / "baselines").iterdir())) == 2


def test_each_test_has_its_own_frontier_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = settings.home()
    assert home.is_relative_to(tmp_path_factory.getbasetemp())
    assert not (home / "baselines").exists()  # no figure cached by another test or the user
    assert (home / "models").is_dir()  # the provisioned models stay reachable


def test_kl_sums_over_every_batch_and_reports_its_figures() -> None:
    lm = tiny_loaded("llama")
    obj = create("kl", n_tokens=128, seq_len=32, top_k=VOCAB, batch_size=1)
    obj.prepare(lm)
    ids = obj.tokens.ids  # type: ignore[attr-defined]
    assert ids.shape[0] == 4  # four windows, one batch each
    base = _logits(lm.model, ids)
    with _pruned(lm):
        per_position = _full_kl(base, _logits(lm.model, ids))
        m = obj.evaluate(lm)
    # the mean over every position of every batch, not the last batch's
    assert m.value == pytest.approx(float(per_position.mean()), rel=1e-4)
    assert float(per_position[-1].mean()) != pytest.approx(m.value, rel=1e-3)
    assert (m.raw, m.baseline) == (m.value, 0.0)
    assert m.details == {"top_k": VOCAB, "top_k_mass": pytest.approx(1.0, abs=1e-5)}


def test_a_model_with_nan_logits_is_a_named_error_for_kl() -> None:
    from frontier.errors import FrontierError

    lm = tiny_loaded("llama")
    obj = create("kl", n_tokens=64, seq_len=32)
    obj.prepare(lm)
    head = lm.model.get_output_embeddings().weight
    saved = head.detach().clone()
    with torch.no_grad():
        head.fill_(float("nan"))
    try:
        with pytest.raises(
            FrontierError, match=r"^KL divergence is NaN: the pruned model produced NaN logits$"
        ):
            obj.evaluate(lm)
    finally:
        with torch.no_grad():
            head.copy_(saved)


def test_perplexity_reports_its_losses_and_an_overflow_as_infinite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lm = tiny_loaded("llama")
    obj = create("ppl", n_tokens=128, seq_len=32)
    obj.prepare(lm)
    base = _labels_nll(lm.model, obj.tokens.ids)  # type: ignore[attr-defined]
    m = obj.evaluate(lm)
    assert m.details["nll"] == pytest.approx(base, rel=1e-5)
    assert m.details["baseline_nll"] == pytest.approx(base, rel=1e-5)
    windows = obj.tokens.ids.shape[0]  # type: ignore[attr-defined]
    assert m.details["window_log_ratios"] == [0.0] * windows
    # exp(800) overflows a float
    monkeypatch.setattr(obj, "_windows", lambda _lm: [800.0] * windows)
    big = obj.evaluate(lm)
    assert big.raw == math.inf and big.value == math.inf
    assert big.details["interval"] == [math.inf, math.inf]


@pytest.mark.parametrize("name", ["ppl", "kl"])
def test_an_objective_half_prepared_refuses_to_evaluate(name: str) -> None:
    from frontier.errors import FrontierError

    lm = tiny_loaded("llama")
    obj = create(name, n_tokens=64, seq_len=32)
    obj.prepare(lm)
    if name == "ppl":
        obj.baseline_nll = None  # type: ignore[attr-defined]
    else:
        obj._ref = []  # type: ignore[attr-defined]
    with pytest.raises(FrontierError, match=f"objective '{name}': evaluate"):
        obj.evaluate(lm)
