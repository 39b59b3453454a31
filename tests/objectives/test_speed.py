from __future__ import annotations

import json

import pytest
import torch

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import tiny_loaded
from objectives import create
from objectives.speed import Speed


def _speed(**params: int) -> Speed:
    settings = {"prompt_tokens": 16, "new_tokens": 4, "repeats": 3, "warmup": 1, **params}
    obj = create("speed", **settings)
    assert isinstance(obj, Speed)
    return obj


@pytest.mark.parametrize("family", ["llama", "gpt2", "opt", "phi3", "gpt_neox", "falcon"])
def test_measures_every_family_pruned_and_not(family: str) -> None:
    lm = tiny_loaded(family)
    obj = _speed(batch_size=2)
    obj.prepare(lm)
    m = obj.evaluate(lm)
    assert m.value > 0 and m.raw is not None and m.raw > 0
    assert m.details["decode_speedup"] > 0
    assert m.details["prompt_tokens"] == 16 and m.details["new_tokens"] == 4
    assert len(m.details["measured"]["prefill_s"]) == 3  # warm-up excluded
    pruner = Pruner(lm.model, [torch.rand(w) for w in lm.adapter.full_widths(lm.model)])
    with pruner.pruned(Plan.uniform(0.25, pruner.full)):
        assert obj.evaluate(lm).value > 0
    json.dumps(m.to_dict())
    json.dumps(obj.protocol())


def test_throughput_is_tokens_over_median_seconds() -> None:
    lm = tiny_loaded("llama")
    obj = _speed(batch_size=2, repeats=3)
    t = obj.measure(lm)
    prefill = sorted(t.prefill_s)[1]
    decode = sorted(t.decode_s)[1]
    assert t.prefill_tokens_per_s == pytest.approx(2 * 16 / prefill)
    assert t.decode_tokens_per_s == pytest.approx(2 * 4 / decode)


def test_prompt_is_fixed_and_avoids_special_tokens() -> None:
    lm = tiny_loaded("llama")
    obj = _speed(prompt_tokens=512, batch_size=4)
    prompt, banned = obj._prompt(lm)
    again, _ = obj._prompt(lm)
    assert prompt.shape == (4, 512)
    assert torch.equal(prompt, again)
    assert set(banned.tolist()) >= {0, 1, 2}  # <pad>, <s>, </s>
    assert not torch.isin(prompt, banned).any()


def test_protocol_names_the_settings_and_the_caveat() -> None:
    proto = _speed().protocol()
    assert proto["objective"] == "speed"
    assert proto["prompt_tokens"] == 16 and proto["repeats"] == 3 and proto["warmup"] == 1
    assert "same machine and thread count" in proto["note"]
    assert proto["threads"] == torch.get_num_threads()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"repeats": 0}, "repeats must be an integer >= 1, got 0"),
        ({"warmup": -1}, "warmup must be an integer >= 0"),
        ({"prompt_tokens": 0}, "prompt_tokens must be an integer >= 1"),
        ({"batch_size": 1.5}, "batch_size must be an integer >= 1, got 1.5"),
    ],
)
def test_bad_settings(params: dict[str, object], message: str) -> None:
    with pytest.raises(FrontierError, match=message):
        create("speed", **params)


def test_prompt_longer_than_the_context_is_refused() -> None:
    lm = tiny_loaded("gpt2")  # 1024 positions
    with pytest.raises(FrontierError, match="exceeds the model's context of 1024"):
        _speed(prompt_tokens=1000, new_tokens=100).prepare(lm)
