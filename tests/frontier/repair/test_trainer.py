"""The repair loop on a tiny model: it lowers the KL, rolls back when it cannot, and never
changes the unpruned model."""

from __future__ import annotations

import math

import pytest
import torch

from frontier.errors import FrontierError
from frontier.importance import calibrate
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.repair import RepairConfig, repair, repair_data
from frontier.testing import tiny_loaded
from objectives import create

SEQ = 64


@pytest.fixture
def setup(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))
    lm = tiny_loaded("llama")
    scores = calibrate(lm, "activation", n_tokens=512, seq_len=SEQ)
    pruner = Pruner(lm.model, scores.per_layer)
    data = repair_data(
        "wiki-sample", lm.tokenizer, seq_len=SEQ, heldout_tokens=512, max_train_tokens=SEQ * 80
    )
    return lm, pruner, data, Plan.uniform(0.5, pruner.full, multiple=4)


def _config(**kw):  # type: ignore[no-untyped-def]
    base = dict(
        steps=16,
        batch_windows=2,
        seq_len=SEQ,
        lr=3e-3,
        warmup_steps=2,
        heldout_tokens=512,
        eval_every=4,
        patience=4,
    )
    return RepairConfig(**{**base, **kw})


def _logits(model, ids):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits


def test_repair_lowers_the_kl_on_text_it_never_trained_on(setup) -> None:  # type: ignore[no-untyped-def]
    lm, pruner, data, plan = setup
    kl = create("kl", role="search", n_tokens=512, seq_len=SEQ)
    kl.prepare(lm)
    ids = data.heldout[:2]
    original = _logits(lm.model, ids)
    with pruner.pruned(plan):
        before = kl.evaluate(lm).value
    result = repair(pruner, plan, data, _config())
    after = kl.evaluate(lm).value
    assert not result.rolled_back and result.kept_step > 0
    assert result.after.loss < result.before.loss
    assert after < 0.9 * before, (before, after)
    assert result.tokens_trained == result.steps_run * 2 * (SEQ - 1)
    assert result.history[0]["step"] == 0 and len(result.history) >= 2
    pruner.restore()  # the unpruned model is untouched: the teacher was never trained
    assert torch.equal(_logits(lm.model, ids), original)
    assert all(
        not p.requires_grad for m in result.modules for x in m.values() for p in x.parameters()
    )


def test_a_repair_that_makes_the_held_out_loss_worse_is_rolled_back(setup) -> None:  # type: ignore[no-untyped-def]
    lm, pruner, data, plan = setup
    ids = data.heldout[:2]
    with pruner.pruned(plan):
        pruned = _logits(lm.model, ids)
    result = repair(pruner, plan, data, _config(lr=50.0, steps=4, eval_every=2, patience=1))
    assert result.rolled_back and result.kept_step == 0
    assert result.after == result.before
    assert result.steps_run >= 2 and result.stop_reason in ("early stop", "non-finite loss")
    assert torch.equal(_logits(lm.model, ids), pruned)  # exactly the pruned weights


def test_a_plan_that_keeps_a_layer_whole_trains_a_copy_of_it(setup) -> None:  # type: ignore[no-untyped-def]
    lm, pruner, data, _ = setup
    widths = (pruner.full[0], *[w // 2 for w in pruner.full[1:]])
    plan = Plan(widths, pruner.full, multiple=4, floor=4)
    original = [p.detach().clone() for p in lm.model.parameters()]
    repair(pruner, plan, data, _config(steps=4, eval_every=2))
    pruner.restore()
    assert all(torch.equal(a, b) for a, b in zip(original, lm.model.parameters(), strict=True))


def test_cpu_budget_stops_the_loop(setup) -> None:  # type: ignore[no-untyped-def]
    _, pruner, data, plan = setup
    result = repair(pruner, plan, data, _config(cpu_minutes=1e-6))
    assert result.stop_reason == "cpu budget" and result.steps_run == 0 and result.rolled_back


def test_repair_applies_the_plan_itself(setup) -> None:  # type: ignore[no-untyped-def]
    _, pruner, data, plan = setup
    with pruner.pruned(plan), pytest.raises(FrontierError, match="restore"):
        repair(pruner, plan, data, _config())


@pytest.mark.parametrize(
    "kw",
    [{"steps": 0}, {"lr": 0.0}, {"temperature": 0.0}, {"ce_weight": 1.5}, {"cpu_minutes": -1.0}],
)
def test_bad_settings_are_one_line_errors(kw) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FrontierError, match="repair"):
        RepairConfig(**kw)


def test_a_cpu_budget_ends_on_an_evaluated_step(setup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # the budget has room for 5 steps (and the closing evaluation): step 5 is no periodic
    # evaluation (every 4), so without the closing one the last step could not be kept
    from frontier.repair import _budget

    monkeypatch.setattr(_budget.CpuBudget, "room_for_step", lambda self: self.steps < 5)
    _, pruner, data, plan = setup
    result = repair(pruner, plan, data, _config(cpu_minutes=100.0, eval_every=4))
    assert result.stop_reason == "cpu budget" and result.steps_run == 5
    assert [h["step"] for h in result.history] == [0, 4, 5]


def test_the_schedule_ends_where_the_budget_does() -> None:
    from types import SimpleNamespace

    from frontier.repair._trainer import _Loop

    loop = SimpleNamespace(cfg=_config(steps=100, warmup_steps=2, lr=1.0))
    lr = lambda step, horizon=None: _Loop._lr_at(loop, step, horizon)  # type: ignore[arg-type]  # noqa: E731
    assert lr(100) == pytest.approx(0.1)  # no budget: 10% of lr at the last step
    assert lr(30, 30) == pytest.approx(0.1)  # the budget's last step
    assert lr(16, 30) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr(30, 500) == lr(30)  # never past the configured steps
