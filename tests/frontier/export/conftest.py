from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    # The CPU is shared: one torch thread per test process.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def safetensors_of(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, tb = safetensors_of(a), safetensors_of(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert ta[k].dtype == tb[k].dtype, k
        assert torch.equal(ta[k].view(torch.uint8), tb[k].view(torch.uint8)), k


@pytest.fixture
def same_tensors() -> Callable[[Path, Path], None]:
    """Assert that two checkpoint folders hold bit-identical safetensors tensors."""
    return assert_same_tensors


@pytest.fixture
def tensors_of() -> Callable[[Path], dict[str, torch.Tensor]]:
    return safetensors_of


def tiny_for_llamacpp(family: str) -> Any:
    """A tiny loaded model of ``family`` that llama.cpp computes as transformers does:
    gemma3's queries are scaled by 1/sqrt(head_dim) there, whatever the config says."""
    from frontier.testing import tiny_loaded

    lm = tiny_loaded(family)
    if family == "gemma3_text":
        head_dim = lm.model.config.head_dim
        lm.model.config.query_pre_attn_scalar = head_dim
        for layer in lm.model.model.layers:
            layer.self_attn.scaling = head_dim**-0.5
    return lm


@pytest.fixture
def llamacpp_tiny() -> Callable[[str], Any]:
    return tiny_for_llamacpp
