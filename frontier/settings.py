"""Where frontier keeps its caches, and the torch thread count."""

from __future__ import annotations

import os
from pathlib import Path


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
