"""The refit on tiny models of every family, and its closed form on synthetic layers."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from frontier.arch.weights import up_vectors
from frontier.data.text import TokenSet
from frontier.importance import Scores, compute_scores
from frontier.models import fingerprint_model
from frontier.pruning.operator import PruningOperator
from frontier.pruning.placement import Refitter
from frontier.pruning.plan import Plan
from frontier.pruning.refit import LayerRefit
from frontier.pruning.ridge import choose_alphas
from frontier.testing import TINY_CONFIGS, WIDTH, tiny_loaded

FAMILIES = sorted(TINY_CONFIGS)
HALF = WIDTH // 2
IDS = torch.tensor([[1, 17, 33, 5, 99, 250, 7, 8, 42, 3], [4, 4, 200, 31, 2, 90, 11, 6, 8, 1]])


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))


def _tokens(n: int = 16, seq: int = 16, seed: int = 3) -> TokenSet:
    ids = torch.randint(0, 300, (n, seq), generator=torch.Generator().manual_seed(seed))
    return TokenSet(ids, "random ids", "calibration", seq, f"rand-{n}-{seq}-{seed}")


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS, use_cache=False).logits.float()


def _duplicate_second_half(lm: object) -> None:
    """Neuron HALF + j computes exactly what neuron j does, in every layer."""
    adapter = lm.adapter  # type: ignore[attr-defined]
    with torch.no_grad():
        for h in adapter.handles(lm.model):  # type: ignore[attr-defined]
            for up in h.up_modules:
                for rows in up_vectors(up, adapter.layout, fused=adapter.fused_gate_up):
                    rows[HALF:] = rows[:HALF]
                if getattr(up, "bias", None) is not None:
                    b = up.bias
                    if adapter.fused_gate_up:
                        n = b.shape[0] // 2
                        b[HALF:n] = b[:HALF]
                        b[n + HALF :] = b[n : n + HALF]
                    else:
                        b[HALF:] = b[:HALF]


def _first_half_scores(scores: Scores) -> Scores:
    ranked = tuple(
        torch.cat([torch.full((HALF,), 2.0), torch.ones(s.numel() - HALF)]).double()
        for s in scores.per_layer
    )
    return dataclasses.replace(scores, per_layer=ranked)


@pytest.mark.parametrize("family", FAMILIES)
def test_refit_reconstructs_the_model_when_kept_neurons_span_the_dropped(family: str) -> None:
    lm = tiny_loaded(family)
    _duplicate_second_half(lm)
    dense = _logits(lm.model)
    scores = _first_half_scores(compute_scores(lm, "energy", _tokens(), grams=True))
    plan = Plan.uniform(0.5, lm.adapter.full_widths(lm.model), multiple=4, floor=4)
    refit = PruningOperator(lm.model, scores, refit=True, alphas=[1e-9] * 3)
    plain = PruningOperator(lm.model, scores, refit=False)
    with plain.pruned(plan):
        cut = _logits(lm.model)
    with refit.pruned(plan) as selection:
        refitted = _logits(lm.model)
    assert selection.to_lists()[0] == list(range(HALF))
    assert (cut - dense).abs().max() > 1e-2  # dropping the copies alone changes the model
    torch.testing.assert_close(refitted, dense, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_restore_after_a_refit_is_bit_identical(family: str) -> None:
    lm = tiny_loaded(family)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    fp = fingerprint_model(lm.model)
    op = PruningOperator(lm.model, compute_scores(lm, "energy", _tokens(), grams=True), refit=True)
    for keep in (0.75, 0.25):
        with op.pruned(Plan.uniform(keep, op.full, multiple=4, floor=4)):
            pass
    after = lm.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert fingerprint_model(lm.model) == fp


def _layer(n: int = 4000, width: int = 12, hidden: int = 5, seed: int = 0):  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, width, generator=gen, dtype=torch.float64) + 0.3
    w = torch.randn(hidden, width, generator=gen, dtype=torch.float64)
    return a, w


def _gram(a: torch.Tensor) -> torch.Tensor:
    x = torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype)], dim=1)
    return x.t() @ x / a.shape[0]


def test_a_ridge_the_gram_cannot_take_is_no_candidate() -> None:
    """A neuron never active (a zero row and column of the Gram): with no ridge the kept
    block is singular, so that strength is out (an infinite error), not a crash; the
    others are compared as before."""
    a, w = _layer(n=400, width=12)
    a[:, 3] = 0.0
    layer = LayerRefit(w, None, _gram(a), 1e-2)
    errs = layer.errors(torch.arange(8), _gram(a), [0.0, 1e-3, 1e-2])
    assert math.isinf(errs[0.0]) and all(math.isfinite(errs[x]) for x in (1e-3, 1e-2))


def test_a_layer_whose_ridge_cannot_be_chosen_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from frontier.errors import FrontierError

    lm = tiny_loaded("llama")
    scores = compute_scores(lm, "energy", _tokens(), grams=True)
    assert scores.grams is not None
    monkeypatch.setattr(
        LayerRefit, "errors", lambda self, keep, held, alphas: dict.fromkeys(alphas, math.inf)
    )
    with pytest.raises(FrontierError, match=r"layer 0: the refit's ridge cannot be chosen"):
        choose_alphas(lm.adapter.handles(lm.model), scores.grams)


@pytest.mark.parametrize("bias", [False, True])
def test_a_dropped_duplicate_is_fully_compensated(bias: bool) -> None:
    a, w = _layer()
    a[:, 7] = a[:, 2]  # neuron 7 duplicates neuron 2
    b = torch.randn(w.shape[0], dtype=torch.float64) if bias else None
    keep = torch.tensor([i for i in range(12) if i != 7])
    cols = LayerRefit(w, b, _gram(a), 1e-12).columns(keep)
    expected = w[:, keep].clone()
    expected[:, 2] += w[:, 7]
    if bias:
        assert b is not None
        expected = torch.cat([expected, b.view(-1, 1)], dim=1)
    torch.testing.assert_close(cols, expected, atol=1e-6, rtol=1e-6)


def test_refit_is_the_ridge_least_squares_solution() -> None:
    a, w = _layer()
    keep = torch.tensor([0, 3, 4, 8, 11])
    lam = 0.05
    layer = LayerRefit(w, None, _gram(a), lam / float(_gram(a)[:12, :12].diagonal().mean()))
    ak = a[:, keep]
    # argmin_W' mean||W a - W' a_K||^2 + lam ||W'||^2, by the normal equations on raw data
    lhs = ak.t() @ ak / a.shape[0] + lam * torch.eye(len(keep), dtype=torch.float64)
    rhs = ak.t() @ (a @ w.t()) / a.shape[0]
    torch.testing.assert_close(layer.columns(keep), torch.linalg.solve(lhs, rhs).t())


@pytest.mark.parametrize("bias", [False, True])
def test_every_prefix_matches_the_direct_solve(bias: bool) -> None:
    a, w = _layer(width=20)
    b = torch.randn(w.shape[0], dtype=torch.float64) if bias else None
    order = torch.randperm(20, generator=torch.Generator().manual_seed(1))
    direct = LayerRefit(w, b, _gram(a), 1e-3)
    fast = LayerRefit(w, b, _gram(a), 1e-3, order)
    for k in range(1, 20):  # both the k^2 and the k (I - k) forms
        kept, cols, new_bias = fast.prefix(k)
        assert torch.equal(kept, order[:k].sort().values)
        want = direct.columns(kept)
        if bias:
            assert new_bias is not None
            torch.testing.assert_close(new_bias.double(), want[:, -1], atol=1e-5, rtol=1e-4)
            want = want[:, :-1]
        torch.testing.assert_close(cols.double(), want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("where", ["host", "disk"])
def test_factors_kept_off_the_device_refit_the_same(where: str, tmp_path: Path) -> None:
    """Layers over the device budget keep their factors in host memory (pinned on a GPU),
    or with a spill folder on disk (the lean path), and read the blocks a trial needs:
    the same weights, bit for bit, as resident factors."""
    from frontier._tensorfile import LayerFolder

    lm = tiny_loaded("llama")
    scores = compute_scores(lm, "energy", _tokens(), grams=True)
    assert scores.grams is not None
    handles = lm.adapter.handles(lm.model)
    orders = [torch.randperm(WIDTH, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    resident = Refitter.build(handles, scores.grams, orders, alphas=[1e-2] * 3)
    one = resident.layers[0].factor_bytes()
    spill = LayerFolder(tmp_path / "factors") if where == "disk" else None
    off = Refitter.build(handles, scores.grams, orders, alphas=[1e-2] * 3, budget=one, spill=spill)
    assert resident.placement()["resident_layers"] == 3
    assert off.placement() == {
        "device": "cpu",
        "resident_layers": 1,
        "host_layers": 2 if where == "host" else 0,
        "disk_layers": 0 if where == "host" else 2,
        "factor_bytes": 3 * one,
    }
    for a, b in zip(_weights(resident, lm, orders), _weights(off, lm, orders), strict=True):
        assert a is not None and b is not None and torch.equal(a.weight, b.weight)
    if spill is not None:  # a set-up run again reads the layers it saved, not the Grams
        empty = dataclasses.replace(scores.grams, fit=(), held=())
        again = Refitter.build(handles, empty, orders, alphas=[1e-2] * 3, budget=0, spill=spill)
        assert again.placement()["disk_layers"] == 3
        for a, b in zip(_weights(resident, lm, orders), _weights(again, lm, orders), strict=True):
            assert a is not None and b is not None and torch.equal(a.weight, b.weight)


def test_factors_saved_in_another_format_are_set_up_again(tmp_path: Path) -> None:
    """A stopped set-up resumes from the layers it saved only where they hold what this
    code reads (FACTOR_FORMAT): factors of an older layout would refit wrongly."""
    from frontier._tensorfile import LayerFolder
    from frontier.pruning import placement

    lm = tiny_loaded("llama")
    scores = compute_scores(lm, "energy", _tokens(), grams=True)
    assert scores.grams is not None
    handles = lm.adapter.handles(lm.model)
    orders = [torch.randperm(WIDTH, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    spill = LayerFolder(tmp_path / "factors")
    Refitter.build(handles, scores.grams, orders, alphas=[1e-2] * 3, budget=0, spill=spill)
    assert all(placement._saved(spill, i, orders[i], 1e-2, False) for i in range(3))
    assert not placement._saved(spill, 0, orders[0], 1e-1, False)  # another alpha
    f = spill.file(1)
    tensors = {n: f.read(n) for n in (*LayerRefit._FACTORS, "order")}
    meta = f.read("meta")
    tensors["meta"] = meta[:6]  # format 1 had no format entry
    spill.write(1, tensors)
    assert not placement._saved(spill, 1, orders[1], 1e-2, False)
    tensors["meta"] = torch.cat([meta[:6], torch.tensor([1.0], dtype=torch.float64)])
    spill.write(1, tensors)
    assert not placement._saved(spill, 1, orders[1], 1e-2, False)


def _weights(refitter: Refitter, lm: Any, orders: list[torch.Tensor]) -> list[Any]:
    """The refitted down weights of the three tiny layers at 5, 20 and 31 kept neurons."""
    kept = [o[:k].sort().values for o, k in zip(orders, (5, 20, 31), strict=True)]
    downs = [h.down_module for h in lm.adapter.handles(lm.model)]
    return refitter.weights(kept, downs, lm.adapter.layout)


def test_alpha_is_chosen_on_the_held_out_windows() -> None:
    lm = tiny_loaded("llama")
    scores = compute_scores(lm, "energy", _tokens(), grams=True)
    assert scores.grams is not None and scores.grams.held_tokens == 2 * 16
    handles = lm.adapter.handles(lm.model)
    alphas, errors = choose_alphas(handles, scores.grams)
    for alpha, errs in zip(alphas, errors, strict=True):
        assert errs[alpha] == min(errs.values())
    refitter = Refitter.build(handles, scores.grams, [torch.arange(WIDTH)] * 3)
    assert refitter.alphas == alphas


def _code_of_scores() -> str:
    from frontier.importance import get_criterion
    from frontier.importance._scores import _score_code

    code = _score_code(get_criterion("obs"))
    assert code is not None
    return code


def test_grams_are_cached_and_recomputed_for_other_calibration(tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    first = compute_scores(lm, "obs", _tokens(), grams=True)
    assert not first.from_cache and first.grams is not None
    files = sorted(p.name for p in (tmp_path / "importance").iterdir())
    assert len(files) == 3 and any(f.endswith(".grams") for f in files)
    grams = next((tmp_path / "importance").glob("*.grams"))  # a file per layer
    assert sorted(p.name for p in grams.iterdir()) == [f"layer-{i:05d}.bin" for i in range(3)]
    assert first.grams.lean  # read back a layer at a time
    assert any(f.endswith("-obs-" + _code_of_scores() + ".scores.safetensors") for f in files)
    again = compute_scores(lm, "energy", _tokens(), grams=True)
    assert again.from_cache and again.grams is not None
    for x, y in zip(first.grams.fit, again.grams.fit, strict=True):
        assert torch.equal(x, y)
    other = compute_scores(lm, "energy", _tokens(seed=4), grams=True)
    assert not other.from_cache
    assert len(list((tmp_path / "importance").iterdir())) == 5  # energy's scores: not cached
    assert other.grams is not None and not torch.equal(other.grams.fit[0], first.grams.fit[0])


def test_the_gram_is_the_second_moment_of_the_down_input() -> None:
    lm = tiny_loaded("gpt2")
    tokens = _tokens(n=2)  # one fitting window, one held out
    seen: list[torch.Tensor] = []
    h = lm.adapter.handles(lm.model)[1]
    hook = h.down_module.register_forward_pre_hook(lambda _m, a: seen.append(a[0].detach()))
    with torch.no_grad():
        lm.model(input_ids=tokens.ids[:1])
    hook.remove()
    x = seen[0].reshape(-1, WIDTH).double()
    grams = compute_scores(lm, "energy", tokens, grams=True).grams
    assert grams is not None and grams.fit_tokens == 16 and grams.held_tokens == 16
    torch.testing.assert_close(grams.fit[1], _gram(x), atol=1e-5, rtol=1e-5)


def test_cached_statistics_and_grams_are_keyed_by_the_code_that_gathered_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from frontier.cache import code_digest
    from frontier.importance import _gram, _scores, _stats

    assert _scores._code() == code_digest([_stats, _gram])[:8]
    lm = tiny_loaded("llama")
    assert not compute_scores(lm, "obs", _tokens(), grams=True).from_cache
    assert compute_scores(lm, "obs", _tokens(), grams=True).from_cache
    # other gathering code: the cached figures are not read, they are gathered again
    monkeypatch.setattr(_scores, "_code", lambda: "changed0")
    assert not compute_scores(lm, "obs", _tokens(), grams=True).from_cache


def test_cached_ridge_strengths_are_keyed_by_the_code_that_chose_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from frontier.pruning import operator as op_mod
    from frontier.pruning.operator import cached_alphas

    lm = tiny_loaded("llama")
    scores = compute_scores(lm, "obs", _tokens(), grams=True)
    calls: list[int] = []
    real = op_mod.choose_alphas

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(op_mod, "choose_alphas", counting)
    first = cached_alphas(lm, scores)
    assert cached_alphas(lm, scores) == first and len(calls) == 1  # read back
    monkeypatch.setattr(op_mod, "_alpha_code", lambda: "changed")
    assert cached_alphas(lm, scores) == first and len(calls) == 2  # chosen again


def test_a_stopped_ridge_choice_resumes_at_its_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each layer's held-out errors are saved as it finishes: a choice stopped after two
    layers computes only the third when run again, and chooses what one run does."""
    from frontier.pruning import ridge
    from frontier.pruning.operator import cached_alphas

    lm = tiny_loaded("llama")
    scores = compute_scores(lm, "obs", _tokens(), grams=True)
    assert scores.grams is not None
    whole, _ = choose_alphas(lm.adapter.handles(lm.model), scores.grams)
    real = ridge.LayerRefit
    built: list[int] = []

    def stopping(*args: Any, **kw: Any) -> Any:
        built.append(1)
        if len(built) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the third layer
        return real(*args, **kw)

    monkeypatch.setattr(ridge, "LayerRefit", stopping)
    with pytest.raises(KeyboardInterrupt):
        cached_alphas(lm, scores)
    built.clear()
    lines: list[str] = []
    monkeypatch.setattr(ridge, "LayerRefit", lambda *a, **k: (built.append(1), real(*a, **k))[1])
    assert cached_alphas(lm, scores, lines.append) == whole
    assert len(built) == 1 and lines == ["refit ridge: layer 3/3"]
    assert cached_alphas(lm, scores) == whole and len(built) == 1  # the whole choice cached


@pytest.mark.parametrize(
    "module", ["frontier.pruning.ridge", "frontier.pruning.refit", "frontier.arch.weights"]
)
def test_the_cached_alphas_are_keyed_by_every_line_of_the_code_they_depend_on(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A constant (REFERENCE_KEEP, DEFAULT_ALPHA), LayerRefit.__init__ or down_matrix
    changed anywhere in the refit's module or the weights' layout gives another key."""
    import inspect
    import sys

    from frontier import cache
    from frontier.pruning import operator as op_mod

    before = op_mod._alpha_code()
    real = inspect.getsource

    def edited(obj: Any) -> str:
        text = real(obj)
        return text + "\n# edited" if obj is sys.modules[module] else text

    monkeypatch.setattr(cache.inspect, "getsource", edited)
    assert op_mod._alpha_code() != before


@pytest.mark.parametrize("bias", [False, True])
def test_a_shared_p_refits_every_prefix_of_both_layers_the_same(bias: bool) -> None:
    """Two compact layers in one P matrix: the holder keeps its own strict lower
    triangle, the other's goes transposed into the strict upper one, exactly; every
    prefix of both refits as before, and the pair holds one P instead of two."""
    holder, alone_h, other, alone_o = (
        LayerRefit(*_synthetic(20, bias, seed), compact=True) for seed in (1, 1, 2, 2)
    )
    own_lower = holder._p.tril(-1).clone()
    other_lower = other._p.tril(-1).clone()
    before = holder.factor_bytes() + other.factor_bytes()
    assert holder.share_p(other)
    assert other._p is holder._p and other.p_shared and holder.p_holds
    assert not (holder.p_shared or other.p_holds)
    assert torch.equal(holder._p.tril(-1), own_lower)  # the holder's triangle untouched
    assert torch.equal(holder._p.triu(1).t(), other_lower)  # the other's, exact, transposed
    assert holder.factor_bytes() + other.factor_bytes() == before - other_lower.numel() * 4
    for k in range(1, 20):
        for paired, alone in ((holder, alone_h), (other, alone_o)):
            got, want = paired.prefix(k), alone.prefix(k)
            assert torch.equal(got[0], want[0])
            torch.testing.assert_close(got[1], want[1], atol=1e-6, rtol=1e-5)
            if bias:
                torch.testing.assert_close(got[2], want[2], atol=1e-6, rtol=1e-5)
    # a layer is paired once, and only compact layers of one width share
    third = LayerRefit(*_synthetic(20, bias, 3), compact=True)
    assert not holder.share_p(third) and not third.share_p(other)
    assert not third.share_p(LayerRefit(*_synthetic(20, bias, 4), compact=False))
    assert not third.share_p(LayerRefit(*_synthetic(12, bias, 5), compact=True))
    assert not third.p_shared


def _synthetic(width: int, bias: bool, seed: int) -> tuple[Any, ...]:
    """A layer's refit arguments, the same for the same seed."""
    a, w = _layer(width=width, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    b = torch.randn(w.shape[0], generator=gen, dtype=torch.float64) if bias else None
    order = torch.randperm(width, generator=gen)
    return w, b, _gram(a), 1e-3, order


@pytest.mark.parametrize("budget", [None, "one layer"])
def test_compact_layers_share_p_in_pairs_and_refit_the_same(budget: str | None) -> None:
    """:meth:`Refitter.build` pairs compact layers (the first holds the second's P; the
    third of three is alone), resident or not, and refits as unshared factors do."""
    lm = tiny_loaded("llama")
    scores = compute_scores(lm, "energy", _tokens(), grams=True)
    assert scores.grams is not None
    handles = lm.adapter.handles(lm.model)
    orders = [torch.randperm(WIDTH, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    full = Refitter.build(handles, scores.grams, orders, alphas=[1e-2] * 3, compact=False)
    one = full.layers[0].factor_bytes()
    shared = Refitter.build(
        handles,
        scores.grams,
        orders,
        alphas=[1e-2] * 3,
        compact=True,
        budget=None if budget is None else one,
    )
    assert [x.p_shared for x in shared.layers] == [False, True, False]
    assert shared.layers[1]._p is shared.layers[0]._p
    n = WIDTH  # llama: no bias column
    hidden = lm.model.config.hidden_size
    assert shared.placement()["factor_bytes"] == (2 * n * n + 3 * 2 * hidden * n) * 4
    for a, b in zip(_weights(full, lm, orders), _weights(shared, lm, orders), strict=True):
        assert a is not None and b is not None
        torch.testing.assert_close(a.weight, b.weight, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("bias", [False, True])
def test_compact_factors_refit_every_prefix_the_same(bias: bool) -> None:
    a, w = _layer(width=20)
    b = torch.randn(w.shape[0], dtype=torch.float64) if bias else None
    order = torch.randperm(20, generator=torch.Generator().manual_seed(1))
    full = LayerRefit(w, b, _gram(a), 1e-3, order)
    compact = LayerRefit(w, b, _gram(a), 1e-3, order, compact=True)
    # the full form keeps the blocks that some prefix reads (L and Y to s - 1, P and Q from
    # s = n // 2 + 1); the compact one P whole, and B and Q
    n, h = 20 + int(bias), w.shape[0]
    s = n // 2 + 1
    assert full.factor_bytes() == ((s - 1) ** 2 + (n - s) * n + h * (s - 1 + n + n - s)) * 4
    assert compact.factor_bytes() == (n * n + 2 * h * n) * 4
    for k in range(1, 20):
        got, want = compact.prefix(k), full.prefix(k)
        assert torch.equal(got[0], want[0])
        torch.testing.assert_close(got[1], want[1], atol=1e-4, rtol=1e-3)
