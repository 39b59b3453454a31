"""Where a model runs and in which dtype: ``--device`` and ``--dtype``.

``auto`` means the first GPU in bf16 where one exists (fp16 on a GPU without bf16), else
the CPU in fp32. Names are checked without importing torch (:func:`check_device`,
:func:`check_dtype`, used by the study spec); :func:`resolve_device` and
:func:`resolve_dtype` turn ``auto`` into what this machine has.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from frontier.errors import FrontierError

if TYPE_CHECKING:
    import torch

DTYPES: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
# the names torch and transformers use, accepted everywhere a dtype is
_SYNONYMS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DEVICE_HELP = "auto (the first GPU where there is one, else the CPU), cpu, cuda or cuda:N"


def check_device(name: str) -> str:
    """``name`` if it is a device this tool knows (not whether this machine has it)."""
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise FrontierError(f"unknown device {name!r}; use {DEVICE_HELP}")
    return name


def check_dtype(name: str) -> str:
    """``name`` in its short form (``float32`` -> ``fp32``), if it is a dtype this tool knows."""
    short = _SYNONYMS.get(name, name) if isinstance(name, str) else name
    if short not in DTYPES:
        raise FrontierError(f"unknown dtype {name!r}; use {', '.join(DTYPES)}")
    return str(short)


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda:0`` or ``cpu``; ``cuda`` -> ``cuda:0``; a GPU this machine does
    not have is a one-line error."""
    import torch

    check_device(name)
    has_cuda = torch.cuda.is_available()
    if name == "auto":
        return "cuda:0" if has_cuda else "cpu"
    if name == "cpu":
        return name
    if not has_cuda:
        raise FrontierError(
            f"--device {name}: this machine has no CUDA GPU that torch can use "
            f"(torch {torch.__version__}); use --device cpu"
        )
    index = int(name.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise FrontierError(
            f"--device {name}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}"
        )
    return f"cuda:{index}"


def resolve_dtype(name: str, device: str) -> str:
    """``auto`` -> bf16 on a GPU (fp16 where it has no bf16), fp32 on the CPU."""
    import torch

    short = check_dtype(name)
    if short != "auto":
        return short
    if device_kind(device) != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def device_kind(device: str) -> str:
    """``cuda:1`` -> ``cuda``: what a study's figures depend on (not which GPU of a kind)."""
    return device.partition(":")[0]


def device_name(device: str) -> str:
    """``cuda:0`` -> ``cuda:0 (NVIDIA H100 80GB HBM3)``: the device as reports name it."""
    if device_kind(device) != "cuda":
        return device
    import torch

    return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"


def torch_dtype(name: str) -> torch.dtype:
    import torch

    short = check_dtype(name)
    if short == "auto":
        raise FrontierError("resolve dtype 'auto' first (resolve_dtype)")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[short]
