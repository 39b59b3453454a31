"""The shared forward passes of the text objectives: batching, sums over batches, and
which text windows an objective reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch

from frontier.data.text import TextSource, token_windows
from frontier.testing import tiny_loaded
from objectives import _lm, create
from objectives._lm import TextWindows, batch_size_for, mean_nll, window_logits


@contextmanager
def _forwards(model: torch.nn.Module) -> Iterator[list[dict[str, Any]]]:
    """Each forward call's batch size and keyword arguments."""
    calls: list[dict[str, Any]] = []

    def hook(_m: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        calls.append({"batch": int(kwargs["input_ids"].shape[0]), **kwargs})

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def test_batch_size_keeps_the_logits_of_a_batch_within_the_budget() -> None:
    # 1 GiB of fp32 logits: 5 windows of 1,024 tokens at a 49,152-token vocabulary.
    assert batch_size_for(1024, 49152) == 5
    assert batch_size_for(1024, 49152, 2) == 2  # a smaller request is kept
    assert batch_size_for(1024, 49152, 64) == 5  # a larger one is cut to the budget
    assert batch_size_for(1 << 20, 1 << 20) == 1  # never below one window
    assert batch_size_for(1 << 20, 1 << 20, 8) == 1


def test_window_logits_batches_by_the_vocabulary_and_keeps_no_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lm = tiny_loaded("llama")
    vocab = lm.model.get_output_embeddings().weight.shape[0]
    assert vocab != lm.model.config.hidden_size
    monkeypatch.setattr(_lm, "LOGITS_BUDGET_BYTES", 2 * 16 * vocab * 4)  # two windows
    ids = torch.randint(0, vocab, (5, 16), generator=torch.Generator().manual_seed(0))
    with _forwards(lm.model) as calls:
        out = list(window_logits(lm.model, ids))
    assert [c["batch"] for c in calls] == [2, 2, 1]
    assert all(c["use_cache"] is False for c in calls)
    assert [tuple(logits.shape) for logits, _ in out] == [(2, 15, vocab)] * 2 + [(1, 15, vocab)]
    assert torch.equal(torch.cat([t for _, t in out]), ids[:, 1:])


def test_mean_nll_averages_every_position_of_every_batch() -> None:
    lm = tiny_loaded("gpt2")
    ids = torch.randint(0, 256, (3, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = sum(float(lm.model(input_ids=w[None], labels=w[None]).loss) for w in ids) / len(
            ids
        )
    with _forwards(lm.model) as calls:
        one_by_one = mean_nll(lm.model, ids, batch_size=1)
    assert [c["batch"] for c in calls] == [1, 1, 1]
    assert one_by_one == pytest.approx(reference, rel=1e-5)
    assert mean_nll(lm.model, ids) == pytest.approx(reference, rel=1e-5)


@pytest.mark.parametrize("strided", [False, True])
def test_text_windows_read_the_layout_asked_for(strided: bool) -> None:
    lm = tiny_loaded("llama")
    kwargs: dict[str, Any] = {"strided": True} if strided else {}
    windows = TextWindows("wiki-sample", "search", 256, 64, None, **kwargs)
    protocol = {"source": TextSource("wiki-sample").label, "role": "search", "tokens": 256}
    assert windows.text_protocol() == protocol | ({"layout": "strided"} if strided else {})
    expected = token_windows(
        TextSource("wiki-sample"),
        "search",
        lm.tokenizer,
        n_tokens=256,
        seq_len=64,
        strided=strided,
    )
    assert torch.equal(windows.windows(lm).ids, expected.ids)
    assert windows.text_protocol() == expected.describe()


@pytest.mark.parametrize(("context", "seq_len"), [(2048, 1024), (512, 512)])
def test_the_default_window_is_1024_tokens_capped_at_the_context(
    context: int, seq_len: int
) -> None:
    lm = tiny_loaded("llama")
    lm.model.config.max_position_embeddings = context
    windows = TextWindows("wiki-sample", "search", 2048, None, None)
    assert tuple(windows.windows(lm).ids.shape) == (2048 // seq_len, seq_len)


@pytest.mark.parametrize("name", ["ppl", "kl"])
def test_every_text_objective_forwards_at_its_batch_size(name: str) -> None:
    lm = tiny_loaded("gpt2")
    obj = create(name, n_tokens=192, seq_len=64, batch_size=2)
    obj.prepare(lm)
    with _forwards(lm.model) as calls:
        obj.evaluate(lm)
    assert [c["batch"] for c in calls] == [2, 1]
