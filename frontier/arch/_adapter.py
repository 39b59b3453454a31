from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from frontier.arch._layout import WeightLayout
from frontier.errors import FrontierError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class MLPAdapter:
    """Where one model family keeps its MLPs and how they are shaped.

    Attributes:
        model_type: ``config.model_type`` this row is for.
        layers: dotted path from the causal-LM module to the list of decoder layers.
        mlp: dotted path from a decoder layer to the module holding the projections
            ("" when they sit on the layer itself, as in OPT).
        up: projections whose *outputs* are the MLP neurons (gate and up; fc1; c_fc).
        down: the projection whose *inputs* are the MLP neurons (down; fc2; c_proj).
        fused_gate_up: ``up[0]`` stacks gate and up rows ([2I, H]), as Phi-3 does.
        layout: weight layout of the projections.
        width_key: config attribute holding the MLP width.
        text_config: the decoder's settings live in ``config.text_config`` (multimodal).
        down_bias: the down projection natively carries a bias.
        activation: where the MLP is no module of its own (``mlp == ""``, OPT), the
            layer's attribute holding the activation between the up and the down
            projection; :meth:`mlp_forward` computes the MLP from it.
    """

    model_type: str
    layers: str
    mlp: str
    up: tuple[str, ...]
    down: str
    width_key: str
    fused_gate_up: bool = False
    layout: WeightLayout = WeightLayout.LINEAR
    text_config: bool = False
    down_bias: bool = False
    activation: str = ""

    def __post_init__(self) -> None:
        if not self.mlp and not (self.activation and len(self.up) == 1):
            raise FrontierError(
                f"{self.model_type}: an MLP that is not a module of its own needs one up "
                "projection and its activation's attribute"
            )

    def mlp_forward(self, handle: MLPHandle, x: Any) -> Any:
        """The MLP's output for its input ``x`` (what its up projections read), computed
        with the projections the handle holds now: the MLP module's own forward, or, where
        the MLP sits on the decoder layer, down(activation(up(x)))."""
        if self.mlp:
            return handle.container(x)
        act = getattr(handle.container, self.activation)
        return handle.down_module(act(handle.get(self.up[0])(x)))

    # -- locating modules ------------------------------------------------------------
    def decoder_config(self, config: Any) -> Any:
        return config.text_config if self.text_config else config

    def layer_list(self, model: nn.Module) -> list[nn.Module]:
        return list(_resolve(model, self.layers))

    def handles(self, model: nn.Module) -> list[MLPHandle]:
        """One handle per decoder layer, in order."""
        out = []
        for i, layer in enumerate(self.layer_list(model)):
            container = _resolve(layer, self.mlp) if self.mlp else layer
            out.append(MLPHandle(index=i, container=container, adapter=self))
        if not out:
            raise FrontierError(
                f"this {self.model_type} model has no decoder layers ({self.layers} is empty): "
                "no MLP to prune"
            )
        return out

    def full_widths(self, model: nn.Module) -> tuple[int, ...]:
        """Current MLP width of every layer, read from the modules themselves."""
        return tuple(h.width for h in self.handles(model))

    def config_width(self, config: Any) -> int:
        cfg = self.decoder_config(config)
        value = getattr(cfg, self.width_key, None)
        if value is None and self.model_type == "gpt2":
            return 4 * int(cfg.n_embd)  # GPT-2 leaves n_inner unset to mean 4 * n_embd
        if value is None and self.model_type == "falcon":
            return 4 * int(cfg.hidden_size)
        if not isinstance(value, int):
            raise FrontierError(
                f"{self.model_type}: config.{self.width_key} is {value!r}, expected an int"
            )
        return value

    def backbone(self, model: nn.Module) -> nn.Module:
        """The decoder stack without the LM head (calibration never needs the logits)."""
        return _resolve(model, self.layers.rsplit(".", 1)[0].split(".")[0])


@dataclass
class MLPHandle:
    """The projections of one layer's MLP, and a way to swap them."""

    index: int
    container: nn.Module
    adapter: MLPAdapter

    def get(self, name: str) -> nn.Module:
        module: nn.Module = getattr(self.container, name)
        return module

    def set(self, name: str, module: nn.Module) -> None:
        setattr(self.container, name, module)

    @property
    def down_module(self) -> nn.Module:
        return self.get(self.adapter.down)

    @property
    def up_modules(self) -> list[nn.Module]:
        return [self.get(n) for n in self.adapter.up]

    @property
    def width(self) -> int:
        from frontier.arch.weights import neuron_count

        return neuron_count(self.down_module, self.adapter.layout)


def _resolve(root: Any, path: str) -> Any:
    obj = root
    for part in path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise FrontierError(
                f"{type(root).__name__} has no '{path}': not the layout its model_type declares"
            ) from None
    return obj


ADAPTERS: dict[str, MLPAdapter] = {}


def register_adapter(adapter: MLPAdapter) -> MLPAdapter:
    ADAPTERS[adapter.model_type] = adapter
    return adapter


def supported_model_types() -> list[str]:
    return sorted(ADAPTERS)


_GATED = ("gate_proj", "up_proj")
for _t in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text"):
    register_adapter(
        MLPAdapter(_t, "model.layers", "mlp", _GATED, "down_proj", "intermediate_size")
    )
# A multimodal Gemma 3: only the text decoder's MLPs are pruned.
register_adapter(
    MLPAdapter(
        "gemma3",
        "model.language_model.layers",
        "mlp",
        _GATED,
        "down_proj",
        "intermediate_size",
        text_config=True,
    )
)
register_adapter(
    MLPAdapter(
        "phi3",
        "model.layers",
        "mlp",
        ("gate_up_proj",),
        "down_proj",
        "intermediate_size",
        fused_gate_up=True,
    )
)
register_adapter(
    MLPAdapter(
        "gpt2",
        "transformer.h",
        "mlp",
        ("c_fc",),
        "c_proj",
        "n_inner",
        layout=WeightLayout.CONV1D,
        down_bias=True,
    )
)
register_adapter(
    MLPAdapter(
        "opt",
        "model.decoder.layers",
        "",
        ("fc1",),
        "fc2",
        "ffn_dim",
        down_bias=True,
        activation="activation_fn",
    )
)
register_adapter(
    MLPAdapter(
        "gpt_neox",
        "gpt_neox.layers",
        "mlp",
        ("dense_h_to_4h",),
        "dense_4h_to_h",
        "intermediate_size",
        down_bias=True,
    )
)
register_adapter(
    MLPAdapter(
        "falcon",
        "transformer.h",
        "mlp",
        ("dense_h_to_4h",),
        "dense_4h_to_h",
        "ffn_hidden_size",
    )
)


def adapter_for(config: Any) -> MLPAdapter:
    """The adapter for a model's config, or a one-line error naming the supported families."""
    model_type = getattr(config, "model_type", None)
    adapter = ADAPTERS.get(str(model_type))
    if adapter is None:
        hint = ""
        if getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None):
            hint = " (mixture-of-experts MLPs are not supported)"
        raise FrontierError(
            f"unsupported architecture {model_type!r}{hint}; supported: "
            + ", ".join(supported_model_types())
        )
    return adapter
