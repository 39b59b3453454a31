"""Where frontier keeps its caches, and the torch thread count."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

#: Calibration tokens by default. The refit solves, per output, a regression on as many
#: unknowns as the layer has neurons (1,536 in SmolLM2, 14,336 in an 8B model), so it
#: needs far more tokens than the scores: on SmolLM2-135M, obs+refit at uniform keep 0.5
#: has a held-out ppl ratio of 2.185 with 65,536 tokens and 2.392 with 16,384.
CALIBRATION_TOKENS = 65536


def home() -> Path:
    """The cache root: ``$FRONTIER_HOME``, else ``$XDG_CACHE_HOME/frontier``, else
    ``~/.cache/frontier``."""
    env = os.environ.get("FRONTIER_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "frontier"


def set_threads(n: int | None) -> None:
    """Set torch's intra-op thread count (``$FRONTIER_THREADS`` when ``n`` is None).

    On a small shared CPU two threads can be slower than one, so this is a setting.
    """
    import torch

    if n is None:
        env = os.environ.get("FRONTIER_THREADS")
        n = int(env) if env else None
    if n is not None and n > 0:
        torch.set_num_threads(n)


_memory_budget: int | None = None


def set_memory_budget(gib: float | None) -> None:
    """Cap the host memory a run may use, in GiB (None: ``$FRONTIER_MEMORY_GB``, else what
    the machine has available). The run then keeps on disk what does not fit."""
    global _memory_budget
    if gib is None:
        env = os.environ.get("FRONTIER_MEMORY_GB")
        gib = float(env) if env else None
    _memory_budget = None if gib is None else int(gib * 2**30)


def memory_budget() -> int | None:
    """The cap :func:`set_memory_budget` set, in bytes (None: none set)."""
    if _memory_budget is None and os.environ.get("FRONTIER_MEMORY_GB"):
        return int(float(os.environ["FRONTIER_MEMORY_GB"]) * 2**30)
    return _memory_budget


def return_freed_memory(threshold: int = 4 << 20) -> None:
    """Have glibc's malloc serve every block of ``threshold`` bytes and more (a tensor of
    a million floats) from its own mapping, returned to the system when freed.

    By default malloc raises that threshold to the largest block freed so far, so after
    a layer's set-up frees its float64 matrices the next ones come from the heap, which
    keeps what it held: the process's resident memory then stays at its peak for the
    rest of the run, whatever it still uses. With the threshold fixed, resident memory
    follows the tensors alive, so one stage's peak does not carry into the next and
    ``frontier.memory``'s estimate is what the machine sees. No-op off glibc."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-3, threshold)  # M_MMAP_THRESHOLD (fixed: no dynamic raise)


def trim_freed_memory() -> None:
    """Give the system back the heap pages that freed small blocks left (glibc's
    ``malloc_trim``), at the end of a stage: what a stage freed then does not stay
    resident through the next one. No-op off glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> Any | None:
    """The C library where it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None
