"""The objectives the search optimises: each is a small registered entry.

Every entry evaluates an in-memory (possibly pruned) model and returns a
:class:`Measurement` with a direction, and passes the shared contract tests in
``tests/objectives/test_contract.py``.
"""

from objectives._base import Direction, Measurement, Objective, create, register, registered

__all__ = ["Direction", "Measurement", "Objective", "create", "register", "registered"]
