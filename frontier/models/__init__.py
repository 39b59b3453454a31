"""Loading models from anywhere: a built-in alias, a local folder, a .gguf file or a hub id."""

from frontier.models._load import load_model
from frontier.models._loaded import LoadedModel, fingerprint_model

__all__ = ["LoadedModel", "fingerprint_model", "load_model"]
