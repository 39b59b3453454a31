"""Contract suite every architecture adapter passes, on a tiny random model of its family."""

from __future__ import annotations

import pytest
import torch

from frontier.arch import ADAPTERS, adapter_for, supported_model_types
from frontier.arch._weights import down_vectors, neuron_count, up_vectors
from frontier.errors import FrontierError
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
    """Zeroing neuron j's down vector must change nothing when neuron j's activation is 0."""
    model = tiny_model(model_type)
    adapter = adapter_for(model.config)
    h = adapter.handles(model)[0]
    seen: list[torch.Tensor] = []
    hook = h.down_module.register_forward_pre_hook(lambda _m, a: seen.append(a[0]))
    model(input_ids=torch.tensor([[1, 2, 3, 4]]))
    hook.remove()
    assert seen[0].shape[-1] == WIDTH


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
