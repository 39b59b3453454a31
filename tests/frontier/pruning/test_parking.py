"""Parking: a trial with no room on its device for both the pruned and the unpruned MLP
projections keeps the unpruned ones in host memory, and gives the same model."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from frontier.pruning.parking import Parking, module_bytes
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import TINY_CONFIGS, tiny_model

IDS = torch.tensor([[1, 17, 33, 5, 99, 250, 7, 8, 42, 3]])
RATIOS = [0.5, 1.0, 0.25]  # the middle layer keeps every neuron: nothing of it is copied
NO_ROOM = -(10**12)  # less than none: every copied layer parks (what it frees included)


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def _emptied(pruner: Pruner) -> list[bool]:
    """Per layer, whether its unpruned projections are parked (hold no weights here; a
    bias the pruned module shares stays)."""
    assert pruner._originals is not None
    return [all(m.weight.numel() == 0 for m in saved.values()) for saved in pruner._originals]


@pytest.mark.parametrize("family", sorted(TINY_CONFIGS))
def test_a_parked_trial_is_the_same_model(family: str) -> None:
    model = tiny_model(family)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(3)
    pruner = Pruner(model, [torch.rand(w, generator=gen) for w in Pruner(model).full])
    plan = Plan.from_ratios(RATIOS, pruner.full)
    with pruner.pruned(plan):
        expected = _logits(model)
        # what parking layers 0 and 2 moves: their unpruned parameters, but a bias the
        # pruned module shares
        assert pruner._originals is not None
        now = {id(p) for h in pruner.handles for m in h.up_modules for p in m.parameters()}
        now |= {id(p) for h in pruner.handles for p in h.down_module.parameters()}
        unpruned = (m for i in (0, 2) for m in pruner._originals[i].values())
        parked = module_bytes(unpruned, skip=now)
    for _ in range(2):  # the second trial reuses the host buffers
        pruner.apply(plan, room=NO_ROOM)
        assert _emptied(pruner) == [True, False, True]
        assert torch.equal(_logits(model), expected)
        pruner.restore()
        assert len(pruner.parking) == 0
        after = model.state_dict()
        assert all(torch.equal(state[k], after[k]) for k in state)
    assert pruner.parking.moved_bytes == 2 * 2 * parked  # two trials, both ways


def test_only_the_layers_beyond_the_room_are_parked() -> None:
    model = tiny_model("llama")
    pruner = Pruner(model, [torch.rand(w) for w in Pruner(model).full])
    plan = Plan.uniform(0.5, pruner.full)
    pruner.apply(plan)
    first = module_bytes(pruner.handles[0].get(n) for n in (*pruner.adapter.up, "down_proj"))
    pruner.restore()
    pruner.apply(plan, room=first)  # the first layer's copies fit, the second's do not
    assert _emptied(pruner)[:2] == [False, True]
    pruner.restore()
    # parking the first layer frees its unpruned weights: twice its half-width copies
    pruner.apply(Plan.from_ratios([0.5, 0.5, 1.0], pruner.full), room=0)
    assert _emptied(pruner) == [True, False, False]
    pruner.restore()
    pruner.apply(plan, room=None)  # no limit: nothing parked
    assert _emptied(pruner) == [False, False, False]
    pruner.restore()


def test_a_failed_apply_leaves_the_model_whole(monkeypatch: Any) -> None:
    """A trial that fails part-way (after parking) restores and unparks what it did."""
    import frontier.pruning.surgery as surgery

    model = tiny_model("qwen2")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    pruner = Pruner(model, [torch.rand(w) for w in Pruner(model).full])
    real = surgery.shrink_down
    calls = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(surgery, "shrink_down", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        pruner.apply(Plan.uniform(0.5, pruner.full), room=NO_ROOM)
    assert not pruner.applied and len(pruner.parking) == 0
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)


def test_parking_moves_the_weights_out_and_back() -> None:
    layer = torch.nn.Linear(8, 4)
    weight = layer.weight.detach().clone()
    parking = Parking()
    size = module_bytes([layer])
    assert size == (32 + 4) * 4 and parking.park([layer]) == size
    assert layer.weight.numel() == 0 and len(parking) == 2
    assert parking.park([layer]) == 0  # parked already
    parking.unpark([layer])
    assert torch.equal(layer.weight, weight) and len(parking) == 0
