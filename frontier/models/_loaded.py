from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from frontier.arch import MLPAdapter, adapter_for


@dataclass
class LoadedModel:
    """A causal LM in memory with its tokenizer, and where it came from.

    ``model`` may have a plan applied in place at any moment (see
    :class:`frontier.surgery.Pruner`); ``fingerprint`` identifies the *unpruned*
    weights and is computed once.
    """

    model: nn.Module
    tokenizer: Any
    source: str
    name: str
    local_dir: str | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def adapter(self) -> MLPAdapter:
        return adapter_for(self.model.config)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_length(self) -> int:
        cfg = self.adapter.decoder_config(self.model.config)
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    @property
    def fingerprint(self) -> str:
        """blake2b of the config and every weight (call before any plan is applied)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint_model(self.model)
        return self._fingerprint


def fingerprint_model(model: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    config = model.config.to_dict()
    for volatile in ("_name_or_path", "transformers_version", "dtype", "torch_dtype"):
        config.pop(volatile, None)
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(str(tensor.dtype).encode())
        t = tensor.detach().contiguous().cpu()
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
