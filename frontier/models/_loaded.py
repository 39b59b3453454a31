from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from frontier.arch import MLPAdapter, adapter_for


@dataclass
class LoadedModel:
    """A causal LM in memory with its tokenizer, and where it came from.

    ``model`` may have a plan applied in place at any moment (see
    :class:`frontier.pruning.surgery.Pruner`); ``fingerprint`` identifies the *unpruned*
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
    def origin(self) -> str:
        """Where the weights came from, in words (a built-in alias's GGUF release, a GGUF
        file dequantized to fp32, or the folder or hub id as published)."""
        from frontier.models._aliases import ALIASES

        record: dict[str, Any] = {}
        marker = None if self.local_dir is None else Path(self.local_dir) / "frontier-source.json"
        if marker is not None and marker.is_file():
            record = json.loads(marker.read_text())
        alias = ALIASES.get(str(record.get("alias")))
        if alias is not None:
            return alias.origin
        if "gguf" in record:
            return f"the GGUF file {Path(str(record['gguf'])).name} dequantized to fp32"
        where = "the hub" if self.local_dir is None else "a local folder"
        return f"{self.source} as published (from {where})"

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
