"""Markdown pieces: table rows and cells that cannot break a table, numbers, percentages."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


def _cell(value: Any) -> str:
    """A table cell: no pipes or newlines, which would break the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def _num(x: float | None, fmt: str = ".3f") -> str:
    if x is None:
        return "–"
    if not math.isfinite(x):
        return str(x)
    return format(x, fmt)


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _pair(search: str, final: str | None) -> str:
    """Search-time and report-fidelity figures side by side, ``search / final``."""
    return search if final is None else f"{search} / {final}"


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested protocol mappings as dotted keys; lists as comma-separated values."""
    if isinstance(value, Mapping):
        if not value and prefix:
            yield prefix, "(empty)"
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, (list, tuple)):
        if all(not isinstance(v, (Mapping, list, tuple)) for v in value):
            yield prefix, ", ".join(str(v) for v in value) or "(none)"
        else:
            for i, v in enumerate(value):
                yield from _flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, "–" if value is None else str(value)
