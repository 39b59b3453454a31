"""The contract every registered objective passes, on tiny random models.

A registered objective without an entry in :data:`FACTORIES` fails this suite: add one
(small settings, so the suite stays fast) when you register a new objective.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
import torch

from frontier.data.mirror import build_mirror
from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import tiny_loaded
from objectives import Measurement, Objective, create, registered

# name -> how to build it for a tiny model. One entry per registered objective.
FACTORIES: dict[str, Callable[[], Objective]] = {
    "params": lambda: create("params"),
    "speed": lambda: create("speed", prompt_tokens=16, new_tokens=4, repeats=2, warmup=1),
    "ppl": lambda: create("ppl", n_tokens=256, seq_len=64),
    "kl": lambda: create("kl", n_tokens=256, seq_len=64, top_k=16),
    "tasks": lambda: create(
        "tasks", tasks=["arc_easy"], n_docs=4, mirror=str(build_mirror(tasks=["arc_easy"]))
    ),
}

# Objectives measured with a clock: repeat evaluations differ, so only positivity is
# checked where the others must reproduce their unpruned value.
TIMED = frozenset({"speed"})

# A gated MLP (llama) and a Conv1D MLP with biases and tied embeddings (gpt2).
FAMILIES = ("llama", "gpt2")

# Looked up at collection time so every registered objective gets its own test ids.
NAMES = sorted(registered())


def _build(name: str) -> Objective:
    if name not in FACTORIES:
        pytest.fail(
            f"objective {name!r} is registered but has no entry in FACTORIES of "
            "tests/objectives/test_contract.py; add one so it runs the contract"
        )
    return FACTORIES[name]()


def _check(m: Measurement, name: str) -> None:
    cls = registered()[name]
    assert isinstance(m, Measurement)
    assert m.name == name
    assert m.direction == cls.direction
    assert math.isfinite(m.value), f"{name}: value {m.value}"
    json.dumps(m.to_dict())  # stored with every trial
    if name in TIMED:
        assert m.value > 0


def _same(a: float, b: float) -> bool:
    return a == pytest.approx(b, rel=1e-5, abs=1e-8)


def test_every_registered_objective_has_a_factory() -> None:
    missing = sorted(set(registered()) - set(FACTORIES))
    assert not missing, f"registered objectives without a FACTORIES entry: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_class_declares_its_name_and_direction(name: str) -> None:
    cls = registered()[name]
    assert cls.name == name
    assert cls.direction in ("minimize", "maximize")
    assert isinstance(_build(name), cls)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", NAMES)
def test_contract(name: str, family: str) -> None:
    obj = _build(name)
    lm = tiny_loaded(family)
    obj.prepare(lm)

    # The unpruned model measured again reproduces its own baseline.
    first = obj.evaluate(lm)
    _check(first, name)
    again = obj.evaluate(lm)
    _check(again, name)
    if name not in TIMED:
        assert _same(again.value, first.value)
        if first.raw is not None and first.baseline is not None:
            assert _same(first.raw, first.baseline), "unpruned raw figure != its baseline"

    # A pruned model evaluates; restoring brings the baseline value back.
    gen = torch.Generator().manual_seed(0)
    pruner = Pruner(
        lm.model, [torch.rand(w, generator=gen) for w in lm.adapter.full_widths(lm.model)]
    )
    with pruner.pruned(Plan.uniform(0.5, pruner.full)):
        pruned = obj.evaluate(lm)
    _check(pruned, name)
    restored = obj.evaluate(lm)
    _check(restored, name)
    if name not in TIMED:
        assert _same(restored.value, first.value), "restore did not bring the baseline back"


@pytest.mark.parametrize("name", NAMES)
def test_evaluate_before_prepare_is_an_error(name: str) -> None:
    # Measured then, the baseline would be whatever state the model is in (a pruned one).
    obj = _build(name)
    with pytest.raises(FrontierError, match="before prepare"):
        obj.evaluate(tiny_loaded("llama"))


@pytest.mark.parametrize("name", NAMES)
def test_protocol_is_json(name: str) -> None:
    obj = _build(name)
    before = obj.protocol()
    json.dumps(before)
    assert before["objective"] == name
    assert obj.warnings() == []  # nothing to warn of before the baseline is known
    obj.prepare(tiny_loaded("llama"))
    after = obj.protocol()
    json.dumps(after)
    assert after["objective"] == name
    warnings = obj.warnings()
    assert isinstance(warnings, list) and all(
        isinstance(w, str) and "\n" not in w and w for w in warnings
    )
