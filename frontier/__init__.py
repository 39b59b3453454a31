"""frontier: find how far a language model's MLPs can be pruned before it breaks.

Importing this package is cheap: torch and transformers are imported only by the
submodules that need them, so ``frontier --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from frontier._version import __version__
from frontier.errors import FrontierError
from frontier.pruning.plan import Plan

__all__ = ["FrontierError", "Plan", "__version__", "load_model", "load_pruned"]

if TYPE_CHECKING:
    from frontier.export import load_pruned
    from frontier.models import load_model


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from frontier.models import load_model

        return load_model
    if name == "load_pruned":
        from frontier.export import load_pruned

        return load_pruned
    raise AttributeError(f"module 'frontier' has no attribute {name!r}")
