"""A process killed while writing the importance cache never leaves a file that is trusted."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from frontier.data.text import TextSource, token_windows
from frontier.importance import compute_scores
from frontier.models import load_model

# Loads the model, then computes scores with a write that stops half-way: it writes half
# the bytes, flushes them to disk, says so in $MARK and hangs until killed.
WRITER = """
import os, pathlib, sys, time
from frontier.data.text import TextSource, token_windows
from frontier.importance import compute_scores
from frontier.models import load_model

lm = load_model(sys.argv[1])
calib = token_windows(TextSource("wiki-sample"), "calibration", lm.tokenizer,
                      n_tokens=512, seq_len=64)
real_fdopen = os.fdopen

class HalfThenHang:
    def __init__(self, f):
        self.f = f
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.f.__exit__(*exc)
    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        os.fsync(self.f.fileno())
        pathlib.Path(os.environ["MARK"]).write_text(str(len(data)))
        time.sleep(600)

os.fdopen = lambda fd, mode="r", *a, **k: HalfThenHang(real_fdopen(fd, mode, *a, **k))
compute_scores(lm, "activation", calib)
"""


def _calibration(lm: Any) -> Any:
    return token_windows(
        TextSource("wiki-sample"), "calibration", lm.tokenizer, n_tokens=512, seq_len=64
    )


def test_kill_while_writing_importance_cache(
    cli: Any, home: Path, tiny_folder: Path, tmp_path: Path
) -> None:
    mark = tmp_path / "mark"
    env = cli.env(MARK=str(mark))
    log = tmp_path / "writer.err"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tiny_folder)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        watch = _Watch(proc, log)
        cli.wait_for("the half-written cache", lambda: mark.is_file() or None, 120, watch)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    full_size = int(mark.read_text())
    cache_dir = home / "importance"
    # the kill left only a hidden temporary file, half the bytes, under a name never read
    assert not list(cache_dir.glob("*.safetensors"))
    (partial,) = [p for p in cache_dir.iterdir() if p.name.endswith(".tmp")]
    assert 0 < partial.stat().st_size < full_size

    lm = load_model(str(tiny_folder))
    first = compute_scores(lm, "activation", _calibration(lm))
    assert not first.from_cache  # recomputed, not read from the half-written bytes
    (cache,) = cache_dir.glob("*.safetensors")
    assert cache.stat().st_size == full_size
    second = compute_scores(lm, "activation", _calibration(lm))
    assert second.from_cache
    for a, b in zip(first.per_layer, second.per_layer, strict=True):
        assert torch.equal(a, b)

    # even a half-written file *at the final name* (a non-atomic writer, a bad disk) is
    # refused with a warning and replaced
    cache.write_bytes(partial.read_bytes())
    with pytest.warns(UserWarning, match="corrupted importance cache"):
        third = compute_scores(lm, "activation", _calibration(lm))
    assert not third.from_cache
    for a, b in zip(first.per_layer, third.per_layer, strict=True):
        assert torch.equal(a, b)
    assert compute_scores(lm, "activation", _calibration(lm)).from_cache


class _Watch:
    """What ``wait_for`` reads of a process: ``popen`` and ``stderr``."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.popen = popen
        self.log = log

    @property
    def stderr(self) -> str:
        return self.log.read_text(errors="replace")
