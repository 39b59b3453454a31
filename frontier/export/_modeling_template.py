"""A stock transformers causal LM whose MLPs have a different width in every layer.

Written next to the weights by frontier's ``heterogeneous`` export and loaded with
``AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)``. It is
self-contained on purpose: it needs torch and transformers only, never frontier.

transformers cannot build per-layer MLP widths itself (``config.per_layer_config`` is
stored but the stock models read one global width), so the stock model is built with
the widest width and each layer's MLP projections are then replaced by empty ones of
that layer's width, before the checkpoint's weights are loaded into them. A width of 0
is a removed MLP: its projections hold no neuron, and it adds only the down
projection's bias, where the family has one.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

# frontier:generated-begin
from transformers import LlamaForCausalLM as _Base

MLP_LAYOUT: dict[str, Any] = {
    "layers": "model.layers",
    "mlp": "mlp",
    "up": ["gate_proj", "up_proj"],
    "down": "down_proj",
    "conv1d": False,
    "fused": False,
    "width_key": "intermediate_size",
    "text_config": False,
}
# frontier:generated-end

WIDTHS_KEY = "frontier_mlp_widths"


def _resolve(root: Any, path: str) -> Any:
    for part in path.split("."):
        root = getattr(root, part)
    return root


def decoder_config(config: Any, layout: dict[str, Any]) -> Any:
    return config.text_config if layout["text_config"] else config


def mlp_widths(config: Any, layout: dict[str, Any]) -> list[int]:
    """The kept width of every layer, from the explicit list (checked against per_layer_config)."""
    widths = getattr(config, WIDTHS_KEY, None)
    if not isinstance(widths, (list, tuple)) or not all(isinstance(w, int) for w in widths):
        raise ValueError(f"config.{WIDTHS_KEY} must be a list of ints, got {widths!r}")
    dec = decoder_config(config, layout)
    if len(widths) != dec.num_hidden_layers:
        raise ValueError(f"{len(widths)} MLP widths for {dec.num_hidden_layers} layers")
    if getattr(dec, "is_heterogeneous", False):
        for i, w in enumerate(widths):
            stored = getattr(dec.per_layer_config[i], layout["width_key"])
            if stored != w:
                raise ValueError(f"layer {i}: per_layer_config width {stored} != {WIDTHS_KEY} {w}")
    return [int(w) for w in widths]


class global_width_access:
    """Let stock model code read the global (widest) width of a per-layer config while it builds.

    A heterogeneous config refuses reads of per-layer attributes; the stock model reads
    the width once per layer at construction, and :func:`resize_mlps` corrects it after.
    """

    # Its "reading the global value" warning is about exactly what is done on purpose here.
    _LOGGER = logging.getLogger("transformers.integrations.heterogeneity.configuration_utils")

    def __init__(self, config: Any, layout: dict[str, Any]) -> None:
        self.dec = decoder_config(config, layout)
        self.before: Any = None
        self.level = 0

    def __enter__(self) -> None:
        self.before = self.dec.__dict__.get("allow_global_per_layer_attribute_access")
        self.level = self._LOGGER.level
        if getattr(self.dec, "is_heterogeneous", False):
            self.dec.__dict__["allow_global_per_layer_attribute_access"] = True
            self._LOGGER.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self._LOGGER.setLevel(self.level)
        if self.before is None:
            self.dec.__dict__.pop("allow_global_per_layer_attribute_access", None)
        else:
            self.dec.__dict__["allow_global_per_layer_attribute_access"] = self.before


def _shell(module: Any) -> Any:
    """A new module of the same class whose parameter/module dicts are its own."""
    cls: Any = type(module)
    new = cls.__new__(cls)
    new.__dict__.update(module.__dict__)
    for key, value in module.__dict__.items():
        if isinstance(value, dict):
            new.__dict__[key] = value.copy()
    return new


def _empty(shape: tuple[int, ...], like: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(
        torch.empty(shape, dtype=like.dtype, device=like.device), requires_grad=like.requires_grad
    )


def resized_up(module: Any, width: int, layout: dict[str, Any]) -> Any:
    """An uninitialised copy of an up projection (gate, up, fc1...) with ``width`` neurons."""
    out = 2 * width if layout["fused"] else width
    w = module.weight
    new = _shell(module)
    if layout["conv1d"]:
        new.weight = _empty((w.shape[0], out), w)
        new.nf = out
    else:
        new.weight = _empty((out, w.shape[1]), w)
        new.out_features = out
    if getattr(module, "bias", None) is not None:
        new.bias = _empty((out,), module.bias)
    return new


_READING_NOTHING: dict[type, type] = {}


def reading_nothing(cls: type) -> type:
    """``cls`` (transformers' ``Conv1D``) for the down projection of a removed MLP (width
    0): Conv1D flattens its input with ``view(-1, 0)``, which torch cannot size, so this
    subclass adds its bias alone, as the product with no columns does."""
    if cls not in _READING_NOTHING:

        def forward(self: Any, x: torch.Tensor) -> torch.Tensor:
            return x.new_zeros((*x.shape[:-1], self.weight.shape[1])) + self.bias

        _READING_NOTHING[cls] = type(f"{cls.__name__}ReadingNothing", (cls,), {"forward": forward})
    return _READING_NOTHING[cls]


def resized_down(module: Any, width: int, layout: dict[str, Any]) -> Any:
    """An uninitialised copy of the down projection reading ``width`` neurons (0: the
    layer's MLP is removed, and adds the down projection's bias alone where it has one)."""
    w = module.weight
    new = _shell(module)
    if layout["conv1d"]:
        new.weight = _empty((width, w.shape[1]), w)
        if width == 0:
            new.__class__ = reading_nothing(type(module))
    else:
        new.weight = _empty((w.shape[0], width), w)
        new.in_features = width
    return new


def resize_mlps(model: nn.Module, widths: list[int], layout: dict[str, Any]) -> None:
    """Replace every layer's MLP projections by uninitialised ones of that layer's width."""
    layers = _resolve(model, layout["layers"])
    if len(layers) != len(widths):
        raise ValueError(f"{len(widths)} MLP widths for {len(layers)} layers")
    for layer, width in zip(layers, widths, strict=True):
        mlp = _resolve(layer, layout["mlp"]) if layout["mlp"] else layer
        for name in layout["up"]:
            setattr(mlp, name, resized_up(getattr(mlp, name), width, layout))
        setattr(mlp, layout["down"], resized_down(getattr(mlp, layout["down"]), width, layout))
        if isinstance(getattr(mlp, "intermediate_size", None), int):
            mlp.intermediate_size = width


def pruned_init(
    self: nn.Module, base: Any, layout: dict[str, Any], config: Any, *args: Any, **kwargs: Any
) -> None:
    """``base.__init__`` at the widest width, then every MLP resized to its exported width."""
    widths = mlp_widths(config, layout)
    with global_width_access(config, layout):
        base.__init__(self, config, *args, **kwargs)
    resize_mlps(self, widths, layout)


class FrontierPrunedForCausalLM(_Base):
    """The stock model class of this checkpoint, with per-layer MLP widths."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        pruned_init(self, _Base, MLP_LAYOUT, config, *args, **kwargs)
