"""``--device`` and ``--dtype``: names, ``auto``, and a GPU this machine lacks or cannot fit.

The GPU cases are simulated (torch.cuda's answers patched): CI has no GPU.
"""

from __future__ import annotations

import pytest
import torch

from frontier.errors import FrontierError
from frontier.models import device as dev
from frontier.models._load import check_fits, weight_bytes
from frontier.testing import tiny_config


def _gpus(monkeypatch: pytest.MonkeyPatch, count: int, *, bf16: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "mps", "CPU", ""])
def test_unknown_device_names_are_one_line_errors(bad: str) -> None:
    with pytest.raises(FrontierError, match="unknown device") as err:
        dev.check_device(bad)
    assert "\n" not in str(err.value) and "cuda:N" in str(err.value)


def test_dtype_names_and_their_synonyms() -> None:
    assert [dev.check_dtype(n) for n in ("float32", "bfloat16", "float16", "bf16", "auto")] == [
        "fp32",
        "bf16",
        "fp16",
        "bf16",
        "auto",
    ]
    with pytest.raises(FrontierError, match="unknown dtype 'int8'; use auto, fp32, bf16, fp16"):
        dev.check_dtype("int8")
    assert dev.torch_dtype("bf16") is torch.bfloat16
    with pytest.raises(FrontierError, match="resolve"):
        dev.torch_dtype("auto")


def test_auto_is_the_cpu_in_fp32_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _gpus(monkeypatch, 0)
    assert dev.resolve_device("auto") == "cpu"
    assert dev.resolve_dtype("auto", "cpu") == "fp32"
    assert dev.resolve_dtype("bf16", "cpu") == "bf16"  # asked for: honoured on the CPU too
    with pytest.raises(FrontierError, match=r"no CUDA GPU.*use --device cpu"):
        dev.resolve_device("cuda")


def test_auto_is_the_first_gpu_in_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    _gpus(monkeypatch, 2)
    assert dev.resolve_device("auto") == "cuda:0"
    assert dev.resolve_device("cuda") == "cuda:0"
    assert dev.resolve_device("cuda:1") == "cuda:1"
    assert dev.resolve_dtype("auto", "cuda:1") == "bf16"
    with pytest.raises(FrontierError, match=r"2 GPU\(s\), cuda:0 to cuda:1"):
        dev.resolve_device("cuda:2")
    _gpus(monkeypatch, 1, bf16=False)  # a GPU without bf16 gets fp16
    assert dev.resolve_dtype("auto", "cuda:0") == "fp16"
    assert dev.device_kind("cuda:7") == "cuda" and dev.device_kind("cpu") == "cpu"


def test_weight_bytes_count_every_parameter_at_the_dtype_size() -> None:
    from transformers import AutoModelForCausalLM

    config = tiny_config("llama")
    n = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    assert weight_bytes(config, "bf16") == 2 * n
    assert weight_bytes(config, "fp32") == 4 * n


def test_a_model_that_does_not_fit_the_gpu_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tiny_config("llama")
    need = weight_bytes(config, "bf16")
    free = {"bytes": need}  # not the 10% headroom
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda _d=None: (free["bytes"], 8 * need))
    with pytest.raises(FrontierError, match=r"needs about .* GiB of GPU memory in bf16") as err:
        check_fits("tiny", config, "bf16", "cuda:0")
    assert "\n" not in str(err.value) and "cuda:0 has" in str(err.value)
    free["bytes"] = 2 * need
    check_fits("tiny", config, "bf16", "cuda:0")  # fits: no error


def test_load_model_in_bf16_on_the_cpu(tiny_folder: object) -> None:
    from frontier.models import load_model

    lm = load_model(str(tiny_folder), dtype="bf16", device="cpu")
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    assert lm.device.type == "cpu"
    fp32 = load_model(str(tiny_folder), dtype="fp32", device="cpu")
    assert next(fp32.model.parameters()).dtype == torch.float32
    # the fingerprint covers the dtype: a bf16 study never reads an fp32 study's caches
    assert lm.fingerprint != fp32.fingerprint
