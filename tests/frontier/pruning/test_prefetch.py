"""The lean path's read-ahead: the blocks of the next layer on disk read while one is
refitted, the same weights, bit for bit, as reading each in its turn."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from frontier._tensorfile import LayerFolder
from frontier.data.text import TokenSet
from frontier.importance import compute_scores
from frontier.pruning import prefetch
from frontier.pruning.placement import Refitter
from frontier.pruning.refit import DownWeights, LayerRefit
from frontier.testing import WIDTH, tiny_loaded

# per tiny layer (three): few kept (a triangular solve), every neuron kept (no refit),
# more kept than dropped (the block-inverse product), one kept
KEPT = ((5, WIDTH, 40), (33, 20, 1), (60, 31, 32))


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))


def _refitter(family: str, tmp_path: Path, *, budget: int | None, compact: bool) -> Any:
    ids = torch.randint(0, 300, (16, 16), generator=torch.Generator().manual_seed(3))
    tokens = TokenSet(ids, "random ids", "calibration", 16, "rand-16-16-3")
    lm = tiny_loaded(family)
    scores = compute_scores(lm, "energy", tokens, grams=True)
    assert scores.grams is not None
    handles = lm.adapter.handles(lm.model)
    orders = [torch.randperm(WIDTH, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    refitter = Refitter.build(
        handles,
        scores.grams,
        orders,
        alphas=[1e-2] * 3,
        budget=budget,
        compact=compact,
        spill=LayerFolder(tmp_path / "factors"),
    )
    return lm, orders, refitter


def _weights(
    lm: Any, orders: list[torch.Tensor], refitter: Refitter, counts: tuple[int, ...], **kw: Any
) -> list[DownWeights | None]:
    kept = [o[:k].sort().values for o, k in zip(orders, counts, strict=True)]
    downs = [h.down_module for h in lm.adapter.handles(lm.model)]
    return refitter.weights(kept, downs, lm.adapter.layout, **kw)


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("resident", [0, 1])
@pytest.mark.parametrize("family", ["llama", "gpt2"])  # gpt2: a bias and Conv1D's layout
def test_reading_ahead_refits_what_reading_in_turn_does(
    family: str, resident: int, compact: bool, tmp_path: Path
) -> None:
    """Every layer on disk, or the first in memory and two on disk: the weights read
    ahead are the serial path's, bit for bit, at both forms of a prefix."""
    lm, orders, probe = _refitter(family, tmp_path / "probe", budget=None, compact=compact)
    budget = resident * probe.layers[0].factor_bytes()
    lm, orders, refitter = _refitter(family, tmp_path, budget=budget, compact=compact)
    assert refitter.placement()["disk_layers"] == 3 - resident
    for counts in KEPT:
        serial = _weights(lm, orders, refitter, counts, prefetch=False)
        ahead = _weights(lm, orders, refitter, counts)
        for k, a, b in zip(counts, serial, ahead, strict=True):
            if k == WIDTH:
                assert a is None and b is None
                continue
            assert a is not None and b is not None
            assert torch.equal(a.weight, b.weight)
            assert (a.bias is None) == (b.bias is None) == (family == "llama")
            assert a.bias is None or b.bias is None or torch.equal(a.bias, b.bias)
        # and they are the in-memory refit's (the serial disk path's own test says so too)
        held = _weights(lm, orders, probe, counts)
        for a, b in zip(held, ahead, strict=True):
            assert (a is None and b is None) or (
                a is not None and b is not None and torch.equal(a.weight, b.weight)
            )


def test_the_next_layer_is_read_while_one_is_refitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layer i+1's blocks are read during layer i's refit, in another thread (the read
    waits for that refit to start, the refit for the read to finish: read in turn, or
    in the refit's thread, this cannot finish), and layer i+2's only after layer i's
    refit is done: one read in flight."""
    lm, orders, refitter = _refitter("llama", tmp_path, budget=0, compact=False)
    which = {id(layer.order): i for i, layer in enumerate(refitter.layers)}
    refitting = [threading.Event() for _ in refitter.layers]
    read_done = [threading.Event() for _ in refitter.layers]
    events: list[tuple[str, int]] = []
    read, weight = prefetch.read_ahead, Refitter._weight

    def logged_read(layer: LayerRefit, k: int) -> LayerRefit:
        i = which[id(layer.order)]
        events.append(("read", i))
        if i > 0:
            assert refitting[i - 1].wait(10), f"layer {i} was not read during layer {i - 1}'s"
        view = read(layer, k)
        read_done[i].set()
        return view

    def logged_weight(layer: LayerRefit, *args: Any) -> DownWeights:
        i = which[id(layer.order)]
        assert not layer.on_disk  # a stand-in holding its blocks
        refitting[i].set()
        if i + 1 < len(read_done):
            assert read_done[i + 1].wait(10), f"layer {i + 1} was not read during layer {i}'s"
        out = weight(layer, *args)
        events.append(("refitted", i))
        return out

    monkeypatch.setattr(prefetch, "read_ahead", logged_read)
    monkeypatch.setattr(Refitter, "_weight", staticmethod(logged_weight))
    _weights(lm, orders, refitter, (5, 40, 20))
    assert sorted(events) == sorted(
        [("read", i) for i in range(3)] + [("refitted", i) for i in range(3)]
    )
    assert events.index(("refitted", 0)) < events.index(("read", 2))


def test_a_block_not_read_ahead_is_refused(tmp_path: Path) -> None:
    """A stand-in serves only the blocks read for its kept count: a prefix that came to
    read others fails instead of reading from disk behind the overlap."""
    _, _, refitter = _refitter("llama", tmp_path, budget=0, compact=False)
    layer = refitter.layers[0]
    assert layer.on_disk
    view = prefetch.read_ahead(layer, 5)
    want = layer.prefix(5)
    got = view.prefix(5)
    assert all(torch.equal(a, b) for a, b in zip(want[:2], got[:2], strict=True))
    with pytest.raises(RuntimeError, match="blocks no longer matches"):
        view.prefix(6)
    with pytest.raises(RuntimeError, match="blocks no longer matches"):
        view.prefix(50)  # the other form: P, B and Q, none read
