from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from frontier.arch import adapter_for
from frontier.data.text import TokenSet
from frontier.errors import FrontierError
from frontier.importance import CRITERIA, collect_stats, compute_scores, get_criterion
from frontier.testing import TINY_CONFIGS, tiny_loaded


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))


def _tokens(n: int = 4, seq: int = 16) -> TokenSet:
    ids = torch.randint(0, 300, (n, seq), generator=torch.Generator().manual_seed(3))
    return TokenSet(ids, "random ids", "calibration", seq, f"rand-{n}-{seq}")


def test_stats_match_a_manual_pass() -> None:
    lm = tiny_loaded("llama")
    adapter = adapter_for(lm.model.config)
    tokens = _tokens()
    seen: list[torch.Tensor] = []
    h = adapter.handles(lm.model)[1]
    hook = h.down_module.register_forward_pre_hook(lambda _m, a: seen.append(a[0].detach()))
    with torch.no_grad():
        lm.model(input_ids=tokens.ids)
    hook.remove()
    x = seen[0].reshape(-1, 64).double()
    stats = collect_stats(lm.model, adapter, tokens.ids, batch_size=3)
    assert stats.tokens == tokens.ids.numel()
    assert torch.allclose(stats.mean[1], x.mean(0), atol=1e-6)
    assert torch.allclose(stats.abs_mean[1], x.abs().mean(0), atol=1e-6)
    assert torch.allclose(stats.var[1], x.var(0, unbiased=False), atol=1e-6)


@pytest.mark.parametrize("criterion", sorted(CRITERIA))
@pytest.mark.parametrize("model_type", sorted(TINY_CONFIGS))
def test_every_criterion_scores_every_family(criterion: str, model_type: str) -> None:
    lm = tiny_loaded(model_type)
    scores = compute_scores(lm, criterion, _tokens(2, 8))
    assert len(scores.per_layer) == 3
    for s in scores.per_layer:
        assert s.shape == (64,) and torch.isfinite(s).all() and (s >= 0).all()
    assert scores.criterion == criterion


def test_activation_score_is_abs_mean_times_down_norm() -> None:
    lm = tiny_loaded("gpt2")  # Conv1D layout: down vectors are rows
    scores = compute_scores(lm, "activation", _tokens())
    assert scores.stats is not None
    c_proj = lm.model.transformer.h[0].mlp.c_proj.weight
    expected = scores.stats.abs_mean[0] * c_proj.double().norm(dim=1)
    assert torch.allclose(scores.per_layer[0], expected, rtol=1e-5)


def test_calibration_is_cached_and_shared_across_criteria(tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    first = compute_scores(lm, "activation", _tokens())
    assert not first.from_cache
    files = list((tmp_path / "importance").glob("*.safetensors"))
    assert len(files) == 1
    second = compute_scores(lm, "fluctuation", _tokens())
    assert second.from_cache
    again = compute_scores(lm, "activation", _tokens())
    assert all(torch.equal(a, b) for a, b in zip(first.per_layer, again.per_layer, strict=True))
    # A different calibration set is a different cache entry.
    compute_scores(lm, "activation", _tokens(2, 16))
    assert len(list((tmp_path / "importance").glob("*.safetensors"))) == 2


def test_corrupted_cache_is_recomputed_with_a_warning(tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    first = compute_scores(lm, "activation", _tokens())
    (path,) = (tmp_path / "importance").glob("*.safetensors")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.warns(UserWarning, match="corrupted importance cache"):
        again = compute_scores(lm, "activation", _tokens())
    assert not again.from_cache
    assert all(torch.equal(a, b) for a, b in zip(first.per_layer, again.per_layer, strict=True))


def test_weight_only_criteria_need_no_calibration_and_others_do() -> None:
    lm = tiny_loaded("llama")
    assert compute_scores(lm, "magnitude", None).stats is None
    with pytest.raises(FrontierError):
        compute_scores(lm, "activation", None)
    with pytest.raises(FrontierError, match="known: activation"):
        get_criterion("nope")


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "phi3"])
def test_energy_and_obs_follow_their_formulas(model_type: str) -> None:
    from frontier.arch.weights import down_vectors

    lm = tiny_loaded(model_type)
    tokens = _tokens(8, 16)
    energy = compute_scores(lm, "energy", tokens)
    obs = compute_scores(lm, "obs", tokens)
    assert obs.grams is not None and energy.stats is not None
    for h in lm.adapter.handles(lm.model):
        w = down_vectors(h.down_module, lm.adapter.layout).double()  # [I, H]
        col2 = (w * w).sum(1)
        # E[a^2] from the Gram's diagonal, independently of the mean/variance statistics
        e_a2 = obs.grams.full(h.index).diagonal()[:-1]
        torch.testing.assert_close(energy.per_layer[h.index], e_a2 * col2, rtol=1e-4, atol=0)
        g = obs.grams.full(h.index)[:-1, :-1]
        ridge = 0.01 * g.diagonal().mean()
        inv = torch.linalg.inv(g + ridge * torch.eye(g.shape[0], dtype=g.dtype))
        torch.testing.assert_close(obs.per_layer[h.index], col2 / inv.diagonal(), rtol=1e-6, atol=0)


def test_scores_of_a_gram_criterion_are_cached_per_criterion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from frontier.importance import _criteria

    lm = tiny_loaded("llama")
    first = compute_scores(lm, "obs-greedy", _tokens())
    compute_scores(lm, "obs", _tokens())
    names = sorted(p.name for p in (tmp_path / "importance").glob("*.scores.safetensors"))
    assert len(names) == 2 and "-obs-greedy-" in names[1] and "-obs-" in names[0]

    def refuse(*_a: object, **_k: object) -> torch.Tensor:
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(_criteria, "greedy_removal", refuse)
    again = compute_scores(lm, "obs-greedy", _tokens())
    assert all(torch.equal(a, b) for a, b in zip(first.per_layer, again.per_layer, strict=True))
    with pytest.raises(AssertionError, match="recomputed"):  # other calibration: no hit
        compute_scores(lm, "obs-greedy", _tokens(2, 16))
    with pytest.raises(AssertionError, match="recomputed"):  # and never without the cache
        compute_scores(lm, "obs-greedy", _tokens(), use_cache=False)


def test_weight_and_statistics_criteria_scores_are_not_cached(tmp_path: Path) -> None:
    lm = tiny_loaded("llama")
    compute_scores(lm, "energy", _tokens())
    compute_scores(lm, "magnitude", None)
    assert not list((tmp_path / "importance").glob("*.scores.safetensors"))


def test_cached_scores_are_keyed_by_the_criteria_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from frontier.cache import code_digest
    from frontier.importance import _criteria, _greedy, _scores

    code = _scores._score_code(CRITERIA["obs-greedy"])
    assert code == code_digest([_criteria, _greedy])[:8] + _scores._code()
    lm = tiny_loaded("llama")
    compute_scores(lm, "obs-greedy", _tokens())
    calls: list[int] = []
    real = _criteria.greedy_removal

    def counted(*a, **k):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(_criteria, "greedy_removal", counted)
    compute_scores(lm, "obs-greedy", _tokens())
    assert calls == []  # read from the cache
    monkeypatch.setattr(_scores, "_code", lambda: "changed0")
    compute_scores(lm, "obs-greedy", _tokens())
    assert len(calls) == 3  # other statistics code: computed again, layer by layer
    # a criterion registered elsewhere is keyed by its own module too
    plugin = dataclasses.replace(CRITERIA["obs"], name="plugin", fn=counted)
    here = code_digest([_criteria, _greedy, sys.modules[__name__]])[:8] + "changed0"
    assert _scores._score_code(plugin) == here


def test_a_criterion_whose_code_cannot_be_read_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from frontier.importance import _criteria, _scores

    space: dict[str, object] = {"obs": CRITERIA["obs"].fn}
    exec("def fn(handles, stats):\n    return obs(handles, stats)\n", space)  # no source file
    fn = space["fn"]
    crit = dataclasses.replace(CRITERIA["obs"], name="opaque", fn=fn)
    assert _scores._score_code(crit) is None
    monkeypatch.setitem(_criteria.CRITERIA, "opaque", crit)
    scores = compute_scores(tiny_loaded("llama"), "opaque", _tokens())
    assert len(scores.per_layer) == 3
    assert not list((tmp_path / "importance").glob("*.scores.safetensors"))


@pytest.mark.parametrize("criterion", ["obs", "obs-greedy"])
def test_gram_criteria_report_each_layer_and_score_as_all_at_once(criterion: str) -> None:
    lm = tiny_loaded("gpt2")
    heard: list[str] = []
    scored = compute_scores(lm, criterion, _tokens(), use_cache=False, progress=heard.append)
    # each layer, with the time left while there is some
    assert [x.split(",")[0] for x in heard[-3:]] == [
        f"scores ({criterion}): layer {i}/3" for i in (1, 2, 3)
    ]
    assert heard[-1] == f"scores ({criterion}): layer 3/3"
    whole = compute_scores(lm, criterion, _tokens(), use_cache=False)
    assert all(torch.equal(a, b) for a, b in zip(scored.per_layer, whole.per_layer, strict=True))
