"""The config written with each export format.

``uniform`` and ``padded`` are stock configs with one smaller width. ``heterogeneous``
keeps the widest width globally, records every layer's width in transformers'
``per_layer_config`` (so stock code that reads the global width fails loudly instead
of building wrong shapes) and in ``frontier_mlp_widths`` (the list the modeling file
and :func:`frontier.export.load_pruned` build from), and points ``auto_map`` at the
shipped modeling file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from frontier.arch import MLPAdapter
from frontier.export._modeling import AUTO_MAP

WIDTHS_KEY = "frontier_mlp_widths"  # the template reads the same name


def exported_config(
    config: Any,
    adapter: MLPAdapter,
    widths: Sequence[int],
    *,
    heterogeneous: bool,
    dtype: torch.dtype,
    architecture: str,
) -> Any:
    """A new config for a checkpoint whose layers have MLP ``widths`` (``config`` is unchanged).

    Without ``heterogeneous`` every layer must already have the same width.
    """
    data = config.to_dict()
    dec = data["text_config"] if adapter.text_config else data
    widest = max(widths)
    if not heterogeneous and len(set(widths)) != 1:
        raise ValueError(f"a stock config holds one MLP width, got {sorted(set(widths))}")
    dec[adapter.width_key] = int(widest)
    data["dtype"] = str(dtype).removeprefix("torch.")
    data["architectures"] = [architecture]  # the stock class, even when auto_map overrides it
    if heterogeneous:
        dec["per_layer_config"] = {i: {adapter.width_key: int(w)} for i, w in enumerate(widths)}
        data[WIDTHS_KEY] = [int(w) for w in widths]
        data["auto_map"] = dict(AUTO_MAP)
    else:
        dec.pop("per_layer_config", None)
        data.pop(WIDTHS_KEY, None)
        data.pop("auto_map", None)
    return type(config).from_dict(data)
