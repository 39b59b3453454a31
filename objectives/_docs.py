"""Which documents and subtasks a task accuracy reads: seeded, stable, search and report apart.

Each task's evaluation documents are put in a seeded random order (per subtask for
groups such as ``mmlu``). The first ``search_pool`` of that order (at most half the
documents) are the only ones the search may use; ``role="search"`` takes the first
``n_docs`` of them, ``role="report"`` takes ``n_docs`` from after the pool. Search and
report documents are therefore always disjoint, whatever ``n_docs`` each uses.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Literal

from frontier.errors import FrontierError

Role = Literal["search", "report"]

# Documents per task reserved for the search (capped at half of each task's documents).
SEARCH_POOL = 250


def doc_order(task: str, n: int, seed: int) -> list[int]:
    """A seeded permutation of ``range(n)``, stable across runs, Python versions and hosts."""
    order = list(range(n))
    random.Random(f"frontier-docs:{seed}:{task}").shuffle(order)
    return order


def search_pool_size(n: int, search_pool: int) -> int:
    """How many of a task's ``n`` documents are reserved for the search."""
    return min(search_pool, n // 2)


def select_docs(
    task: str, n: int, *, role: Role, n_docs: int | None, seed: int, search_pool: int = SEARCH_POOL
) -> list[int]:
    """Sorted document indices of ``task`` (of ``n``) for ``role``; see the module docstring."""
    # Sorted: lm-eval maps logged doc ids through the samples list in dataset order.
    return sorted(
        ordered_docs(task, n, role=role, n_docs=n_docs, seed=seed, search_pool=search_pool)
    )


def ordered_docs(
    task: str, n: int, *, role: Role, n_docs: int | None, seed: int, search_pool: int = SEARCH_POOL
) -> list[int]:
    """:func:`select_docs` in the seeded order: the first ``k`` of ``n_docs`` are the
    documents ``n_docs=k`` selects, so a measurement can grow by taking more of them."""
    if n_docs is not None and n_docs <= 0:
        raise FrontierError(f"n_docs must be positive, got {n_docs}")
    order = doc_order(task, n, seed)
    pool = search_pool_size(n, search_pool)
    chosen = order[:pool] if role == "search" else order[pool:]
    if n_docs is not None:
        chosen = chosen[:n_docs]
    if not chosen:
        raise FrontierError(
            f"{task}: no documents left for role {role!r} ({n} documents, search pool {pool})"
        )
    return chosen


def select_subtasks(group: str, names: Sequence[str], k: int | None, seed: int) -> list[str]:
    """A seeded choice of ``k`` of a group's subtasks (all of them when ``k`` is None)."""
    if k is None or k >= len(names):
        return sorted(names)
    if k <= 0:
        raise FrontierError(f"subtasks must be positive, got {k}")
    return sorted(random.Random(f"frontier-subtasks:{seed}:{group}").sample(sorted(names), k))


def docs_for(n_docs: int | Mapping[str, int] | None, task: str) -> int | None:
    """``task``'s document count from an int, ``None`` or a per-task mapping."""
    if not isinstance(n_docs, Mapping):
        return n_docs
    if task in n_docs:
        return n_docs[task]
    if "default" in n_docs:
        return n_docs["default"]
    raise FrontierError(f"no document count for task {task!r}: name it or give a 'default'")


def share(n_docs: int | None, leaves: int) -> int | None:
    """Documents per subtask when ``n_docs`` are spread over ``leaves`` subtasks."""
    return None if n_docs is None else max(1, -(-n_docs // leaves))
