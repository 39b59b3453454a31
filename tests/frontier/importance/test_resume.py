"""A calibration killed part-way resumes: the layers it finished are not gathered again,
the group of layers it was in goes on from its last checkpoint, and the statistics equal
those of a calibration that was never stopped."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from frontier import memory
from frontier._tensorfile import LayerFolder, TensorFile
from frontier.data.text import TokenSet
from frontier.importance import compute_scores
from frontier.importance._scores import gram_cache_path
from frontier.testing import tiny_config, tiny_loaded

BATCHES = 5  # 16 windows in batches of 4: 14 fitting windows and 2 held out

CHILD = textwrap.dedent(
    """
    import dataclasses, time, torch
    from frontier import memory
    from frontier.data.text import TokenSet
    from frontier.importance import _stats, compute_scores
    from frontier.testing import tiny_config, tiny_loaded

    _stats.CHECKPOINT_SECONDS = 0.0  # a checkpoint after every batch
    lm = tiny_loaded("llama")
    ids = torch.randint(0, 300, (16, 16), generator=torch.Generator().manual_seed(3))
    tokens = TokenSet(ids, "random ids", "calibration", 16, "rand-16-16-3")
    layout = dataclasses.replace(memory.plan_layout(tiny_config("llama"), "fp32"), gram_layers=1)
    lm.adapter.backbone(lm.model).register_forward_pre_hook(lambda *_: time.sleep(0.4))
    compute_scores(lm, "energy", tokens, grams=True, layout=layout)
    """
)


def _tokens() -> TokenSet:
    ids = torch.randint(0, 300, (16, 16), generator=torch.Generator().manual_seed(3))
    return TokenSet(ids, "random ids", "calibration", 16, "rand-16-16-3")


def test_a_killed_calibration_resumes_from_its_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ))
    lm = tiny_loaded("llama")
    store = LayerFolder(gram_cache_path(lm.fingerprint, _tokens().fingerprint))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:  # kill it in its 2nd pass
        if store.has(0) and store.partial.is_file():
            state = TensorFile(store.partial)
            if state.read("group").tolist() == [1] and int(state.read("batches")[0]) >= 2:
                break
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the calibration ended before it was killed"
    assert store.has(0) and not store.has(1) and not store.has(2)
    done = int(TensorFile(store.partial).read("batches")[0])
    assert 2 <= done < BATCHES
    first = store.path(0).stat().st_mtime_ns

    ran: list[int] = []
    lm.adapter.backbone(lm.model).register_forward_pre_hook(lambda *_: ran.append(1))
    layout = dataclasses.replace(memory.plan_layout(tiny_config("llama"), "fp32"), gram_layers=1)
    resumed = compute_scores(lm, "energy", _tokens(), grams=True, layout=layout)
    # layer 0 is not gathered again, layer 1's pass goes on from its checkpoint, then
    # layer 2's pass; the statistics, saved when the first pass ended, are not redone
    assert store.path(0).stat().st_mtime_ns == first
    assert len(ran) == (BATCHES - done) + BATCHES
    assert not store.partial.exists()

    fresh = tiny_loaded("llama")
    whole = compute_scores(fresh, "energy", _tokens(), grams=True, use_cache=False)
    assert resumed.grams is not None and whole.grams is not None and resumed.grams.lean
    for i in range(3):
        assert torch.equal(resumed.grams.fit[i], whole.grams.fit[i])
        assert torch.equal(resumed.grams.held[i], whole.grams.held[i])
        assert torch.equal(resumed.per_layer[i], whole.per_layer[i])
    assert resumed.grams.fit_tokens == whole.grams.fit_tokens
