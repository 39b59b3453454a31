"""Load an export without running code from the checkpoint folder.

``uniform`` and ``padded`` exports are stock checkpoints. A ``heterogeneous`` one is
loaded through the stock model class of its family, subclassed here (not taken from
the folder) so that each layer's MLP is resized to its exported width before
transformers loads the weights; transformers does the rest (dtype, tied embeddings).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from frontier.arch import adapter_for
from frontier.errors import FrontierError
from frontier.export._modeling import mlp_layout
from frontier.export._record import RECORD_NAME
from frontier.export.formats import get_format

LoadDtype = Literal["auto", "fp32", "fp16", "bf16"]
TORCH_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}


def export_format(folder: Path) -> str:
    """The export format recorded in the folder's ``compression.json``."""
    try:
        data = json.loads((Path(folder) / RECORD_NAME).read_text(encoding="utf-8"))
        return str(data["export_format"])
    except FileNotFoundError:
        raise FrontierError(f"{folder}: no {RECORD_NAME}; not a frontier export") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FrontierError(f"{folder}/{RECORD_NAME}: unreadable ({exc})") from None


@functools.cache
def pruned_class(base: type) -> Any:
    """A subclass of a stock causal-LM class whose layers take the exported MLP widths."""

    from frontier.export import _modeling_template as template

    def __init__(self: nn.Module, config: Any, *args: Any, **kwargs: Any) -> None:
        layout = mlp_layout(adapter_for(config))
        template.pruned_init(self, base, layout, config, *args, **kwargs)

    return type(f"Pruned{base.__name__}", (base,), {"__init__": __init__})


def load_pruned(folder: Path | str, *, dtype: LoadDtype = "auto") -> tuple[nn.Module, Any]:
    """(model, tokenizer) of a frontier export, of any format, without remote code.

    ``dtype="auto"`` keeps the dtype the export was written in.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from frontier.export import _modeling_template as template

    folder = Path(folder)
    fmt = export_format(folder)
    torch_dtype: Any = "auto" if dtype == "auto" else TORCH_DTYPES[dtype]
    config = AutoConfig.from_pretrained(folder)
    if get_format(fmt).remote_code:  # its own modeling code: the pruned class, built here
        base = AutoModelForCausalLM._model_mapping[type(config)]
        try:
            template.mlp_widths(config, mlp_layout(adapter_for(config)))
        except ValueError as exc:
            raise FrontierError(f"{folder}: {exc}") from None
        model = pruned_class(base).from_pretrained(folder, config=config, dtype=torch_dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model.eval(), tokenizer
