"""The modeling file shipped with a ``heterogeneous`` export, rendered from a template.

The template (``_modeling_template.py``) is a valid, self-contained module; rendering
only replaces its generated block with this family's stock class and MLP layout, taken
from the architecture adapter so the facts live in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frontier.arch import MLPAdapter, WeightLayout

MODELING_FILE = "modeling_frontier.py"
CLASS_NAME = "FrontierPrunedForCausalLM"
AUTO_MAP = {"AutoModelForCausalLM": f"{MODELING_FILE[:-3]}.{CLASS_NAME}"}

_TEMPLATE = Path(__file__).with_name("_modeling_template.py")
_BEGIN = "# frontier:generated-begin\n"
_END = "# frontier:generated-end\n"


def mlp_layout(adapter: MLPAdapter) -> dict[str, Any]:
    """The adapter's facts as the plain dict the template reads."""
    return {
        "layers": adapter.layers,
        "mlp": adapter.mlp,
        "up": list(adapter.up),
        "down": adapter.down,
        "conv1d": adapter.layout is WeightLayout.CONV1D,
        "fused": adapter.fused_gate_up,
        "width_key": adapter.width_key,
        "text_config": adapter.text_config,
    }


def render_modeling(base_class: str, adapter: MLPAdapter) -> str:
    """Source of the modeling file for a model whose stock class is ``base_class``."""
    if not base_class.isidentifier():
        raise ValueError(f"not a class name: {base_class!r}")
    text = _TEMPLATE.read_text(encoding="utf-8")
    head, rest = text.split(_BEGIN, 1)
    _, tail = rest.split(_END, 1)
    block = (
        f"from transformers import {base_class} as _Base\n\n"
        f"MLP_LAYOUT: dict[str, Any] = {mlp_layout(adapter)!r}\n"
    )
    return head + _BEGIN + block + _END + tail
