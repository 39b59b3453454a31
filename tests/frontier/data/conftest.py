"""Fixtures of the data tests."""

from __future__ import annotations

import pytest

from frontier.errors import FrontierError


@pytest.fixture(scope="session")
def bigbench_listed() -> bool:
    """Whether the package index still lists the bigbench 1.0.0 sdist, TruthfulQA's source
    (PyPI stopped serving it by 2026-12-06: its simple page and JSON API list only 0.0.1)."""
    from frontier.data._pypi import find_file

    try:
        find_file("bigbench", "bigbench-1.0.0.tar.gz")
    except FrontierError as exc:
        if "lists no" in str(exc):
            return False
        raise
    return True
