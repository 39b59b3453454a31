"""The looks of the tasks objective's adaptive documents (:mod:`objectives.tasks`).

Each leaf task's documents are read in their seeded order: the first look reads the
first ``n_docs`` of them, each further look twice as many, until all are read. The
final stage's looks (:func:`first_to_end`) are sized so that the last one ends exactly
at the documents' end: no look is spent on a small remainder.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Looks:
    """Which documents each look reads.

    ``leaves``: each requested task's leaf tasks; ``order``: each leaf's documents in
    the seeded order (all any look may read); ``first``: how many of them the first
    look reads.
    """

    leaves: dict[str, list[str]]
    order: dict[str, list[int]]
    first: dict[str, int]

    def read(self, leaf: str, looks: int) -> int:
        """How many of ``leaf``'s documents (in the seeded order) ``looks`` looks read: the
        first look ``n_docs``, each further one twice as many (none before the first)."""
        return 0 if looks < 1 else self.first[leaf] * 2 ** (looks - 1)

    def read_of(self, leaf: str, looks: int) -> int:
        """How many of ``leaf``'s documents ``looks`` looks read, at most all of them."""
        return min(self.read(leaf, looks), len(self.order[leaf]))

    def keys(self, name: str, looks: int | None) -> list[str]:
        """The documents of task ``name`` read by ``looks`` looks (None: the first)."""
        return [
            f"{leaf}/{i}"
            for leaf in self.leaves[name]
            for i in self.order[leaf][: self.read(leaf, looks or 1)]
        ]

    def max_looks(self, name: str) -> int:
        """Looks until every leaf of task ``name`` has read all its documents."""
        looks = 1
        for leaf in self.leaves[name]:
            while self.read(leaf, looks) < len(self.order[leaf]):
                looks += 1
        return looks

    def fresh(self, looks: dict[str, int]) -> dict[str, list[int]]:
        """The documents (sorted, per leaf) that look ``looks[name]`` of each task ``name``
        reads and its earlier looks did not; leaves with none are left out."""
        samples: dict[str, list[int]] = {}
        for name, n in looks.items():
            for leaf in self.leaves[name]:
                fresh = self.order[leaf][self.read(leaf, n - 1) : self.read(leaf, n)]
                if fresh:  # (lm-eval reads an empty list as "every document")
                    samples[leaf] = sorted(fresh)
        return samples


def first_to_end(total: int, start: int) -> int:
    """The first look's size, at least ``start`` (at most twice it), such that looks
    doubling from it end exactly at ``total``: ``first_to_end(2126, 200)`` is 266 (looks
    of 266, 532, 1064 and all 2,126). ``total`` itself where it is at most ``start``."""
    if start < 1:
        raise ValueError(f"start must be positive, got {start}")
    if total <= start:
        return total
    halvings = 0
    while total / 2 ** (halvings + 1) >= start:
        halvings += 1
    return -(-total // 2**halvings)
