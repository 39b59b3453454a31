"""Small figures cached as JSON under ``$FRONTIER_HOME``, keyed by all they depend on.

The file name is a digest of the key, and the key is stored beside the value and
compared on reading, so a changed input is a miss, never a stale figure. A file that
cannot be read is recomputed and overwritten; writes are atomic.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from frontier import settings
from frontier._io import write_json_atomic

T = TypeVar("T")


def code_digest(functions: Sequence[Any]) -> str:
    """blake2b of the source of the functions (or modules) that compute a figure: a
    changed metric gets a new cache key, so it never reads a figure the old code cached."""
    h = hashlib.blake2b(digest_size=8)
    for fn in functions:
        h.update(inspect.getsource(fn).encode())
    return h.hexdigest()


def cache_path(folder: str, kind: str, key: Mapping[str, Any]) -> Path:
    """Where the figure of ``kind`` for ``key`` is kept (``<folder>/<kind>-<digest>.json``)."""
    digest = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=12).hexdigest()
    return settings.home() / folder / f"{kind}-{digest}.json"


def read_cached(folder: str, kind: str, key: Mapping[str, Any]) -> Any | None:
    """The value cached for ``key``, or None (never cached, another key, unreadable)."""
    path = cache_path(folder, kind, key)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return data["value"] if data.get("key") == key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # corrupted: the caller recomputes and overwrites


def write_cached(folder: str, kind: str, key: Mapping[str, Any], value: Any) -> None:
    """Store ``value`` (JSON-serialisable) for ``key``, atomically."""
    write_json_atomic(cache_path(folder, kind, key), {"key": key, "value": value})


def cached_json(folder: str, kind: str, key: Mapping[str, Any], compute: Callable[[], T]) -> T:
    """The cached value for ``key``, else ``compute()`` (JSON-serialisable), stored first."""
    cached = read_cached(folder, kind, key)
    if cached is not None:
        found: T = cached
        return found
    value = compute()
    write_cached(folder, kind, key, value)
    return value


__all__ = ["cache_path", "cached_json", "code_digest", "read_cached", "write_cached"]
