"""Contract suite every architecture adapter passes, on a tiny random model of its family."""

from __future__ import annotations

import pytest
import torch

from frontier.arch import ADAPTERS, adapter_for, supported_model_types
from frontier.arch.weights import down_vectors, neuron_count, up_vectors
from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner
from frontier.testing import LAYERS, TINY_CONFIGS, WIDTH, tiny_config, tiny_model

FAMILIES = sorted(TINY_CONFIGS)


def test_every_adapter_has_a_tiny_model() -> None:
    # gemma3 (multimodal) is covered by its own test below.
    assert set(ADAPTERS) - {"gemma3"} == set(FAMILIES)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_adapter_contract(model_type: str) -> None:
    model = tiny_model(model_type)
    adapter = adapter_for(model.config)
    assert adapter.model_type == model_type
    handles = adapter.handles(model)
    assert [h.index for h in handles] == list(range(LAYERS))
    assert adapter.full_widths(model) == (WIDTH,) * LAYERS
    assert adapter.config_width(model.config) == WIDTH
    for h in handles:
        down = down_vectors(h.down_module, adapter.layout)
        assert down.shape == (WIDTH, model.config.get_text_config().hidden_size)
        assert neuron_count(h.down_module, adapter.layout) == WIDTH
        for up in h.up_modules:
            for rows in up_vectors(up, adapter.layout, fused=adapter.fused_gate_up):
                assert rows.shape[0] == WIDTH
    # The backbone runs without the LM head and returns hidden states.
    out = adapter.backbone(model)(input_ids=torch.tensor([[1, 5, 7]]), use_cache=False)
    assert out.last_hidden_state.shape[-1] == model.config.get_text_config().hidden_size


@pytest.mark.parametrize("model_type", FAMILIES)
def test_down_input_is_the_neuron_axis(model_type: str) -> None:
    """Zeroing neuron j's down vector must change nothing when neuron j's activation is 0
    (and must change the output when it is not): row j of ``down_vectors`` is what the
    down projection's input column j writes."""
    model = tiny_model(model_type)
    adapter = adapter_for(model.config)
    h = adapter.handles(model)[0]
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    j = 5

    def silence(_m: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x = args[0].clone()
        assert x.shape[-1] == WIDTH  # the down projection reads one input per neuron
        x[..., j] = 0
        return (x, *args[1:])

    def logits() -> torch.Tensor:
        with torch.no_grad():
            return model(input_ids=ids).logits

    base = logits()
    hook = h.down_module.register_forward_pre_hook(silence)
    silenced = logits()
    with torch.no_grad():
        down_vectors(h.down_module, adapter.layout)[j].zero_()  # a view of the weight
    silenced_and_zeroed = logits()
    hook.remove()
    zeroed = logits()
    assert torch.allclose(silenced_and_zeroed, silenced, atol=1e-6, rtol=0)
    assert (zeroed - base).abs().max() > 1e-4, "neuron j's down vector wrote nothing"


def test_unsupported_architecture_names_supported_families() -> None:
    from transformers import MixtralConfig

    cfg = MixtralConfig(num_local_experts=4)
    with pytest.raises(FrontierError) as err:
        adapter_for(cfg)
    msg = str(err.value)
    assert "mixtral" in msg and "mixture-of-experts" in msg and "llama" in msg
    assert "\n" not in msg
    assert supported_model_types() == sorted(ADAPTERS)


def test_multimodal_gemma3_prunes_text_layers_only() -> None:
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    text = tiny_config("gemma3_text").to_dict()
    vision = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 28,
        "patch_size": 14,
    }
    cfg = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4)
    torch.manual_seed(0)
    model = Gemma3ForConditionalGeneration(cfg).eval()
    adapter = adapter_for(model.config)
    assert adapter.model_type == "gemma3"
    assert adapter.full_widths(model) == (WIDTH,) * LAYERS
    assert adapter.config_width(model.config) == WIDTH
    text_layers = model.model.language_model.layers
    handles = adapter.handles(model)
    assert [h.down_module for h in handles] == [layer.mlp.down_proj for layer in text_layers]

    vision = {k: v.clone() for k, v in model.model.vision_tower.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    pruner = Pruner(model, [torch.rand(WIDTH, generator=gen) for _ in range(LAYERS)])
    with pruner.pruned(Plan.uniform(0.5, pruner.full)):
        for layer in text_layers:
            assert layer.mlp.down_proj.weight.shape[1] == WIDTH // 2
            assert layer.mlp.gate_proj.weight.shape[0] == WIDTH // 2
        after = model.model.vision_tower.state_dict()
        assert after.keys() == vision.keys()
        for k, v in vision.items():
            assert torch.equal(after[k], v), f"vision weight {k} changed"


@pytest.mark.parametrize("model_type", FAMILIES)
def test_mlp_forward_is_what_the_model_computes(model_type: str) -> None:
    """``mlp_forward`` on the input the up projection reads gives what the down projection
    writes in the model's own forward (the local reconstruction fits through it)."""
    model = tiny_model(model_type)
    adapter = adapter_for(model.config)
    h = adapter.handles(model)[1]
    seen: dict[str, torch.Tensor] = {}

    def take_in(_m: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen["x"] = args[0].clone()

    def take_out(_m: torch.nn.Module, _a: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        seen["y"] = out.clone()  # Falcon adds the attention's output to it in place

    hooks = [
        h.get(adapter.up[0]).register_forward_pre_hook(take_in),
        h.down_module.register_forward_hook(take_out),
    ]
    with torch.no_grad():
        model(input_ids=torch.tensor([[1, 2, 3, 4, 5, 6]]))
        for hk in hooks:
            hk.remove()
        got = adapter.mlp_forward(h, seen["x"])
    assert torch.equal(got, seen["y"])


def test_an_mlp_on_the_layer_needs_its_activation() -> None:
    from frontier.arch import MLPAdapter

    with pytest.raises(FrontierError, match="activation"):
        MLPAdapter("x", "model.layers", "", ("fc1",), "fc2", "ffn_dim")
