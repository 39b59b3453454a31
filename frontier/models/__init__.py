"""Loading models from anywhere: a built-in alias, a local folder, a .gguf file or a hub id.

The alias table (:func:`list_models`, :func:`pull`) imports no torch; :func:`load_model`
and :class:`LoadedModel` do, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from frontier.models._aliases import ALIASES, DEFAULT_ALIAS, Alias, list_models, pull

__all__ = [
    "ALIASES",
    "DEFAULT_ALIAS",
    "Alias",
    "LoadedModel",
    "fingerprint_model",
    "list_models",
    "load_model",
    "pull",
    "weight_bytes",
]

if TYPE_CHECKING:
    from frontier.models._load import load_model, weight_bytes
    from frontier.models._loaded import LoadedModel, fingerprint_model


def __getattr__(name: str) -> Any:
    if name in ("load_model", "weight_bytes"):
        from frontier.models import _load

        return getattr(_load, name)
    if name in ("LoadedModel", "fingerprint_model"):
        from frontier.models import _loaded

        return getattr(_loaded, name)
    raise AttributeError(f"module 'frontier.models' has no attribute {name!r}")
