"""``load_model``: one entry point for aliases, folders, GGUF files and hub ids."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from frontier import settings
from frontier.errors import FrontierError
from frontier.models._aliases import ALIASES, Progress, convert_gguf, pull
from frontier.models._loaded import LoadedModel
from frontier.models.device import device_kind, resolve_device, resolve_dtype, torch_dtype

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def resolve(spec: str, *, progress: Progress | None = None) -> tuple[str, str]:
    """Where to load ``spec`` from: (folder or hub id, kind)."""
    if spec in ALIASES:
        return str(pull(spec, progress=progress)), "alias"
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FrontierError(f"{spec}: folder has no config.json; not a Hugging Face model")
        return str(path), "folder"
    if path.is_file():
        if path.suffix != ".gguf":
            raise FrontierError(
                f"{spec}: not a model (expected a folder, a .gguf file, "
                f"a hub id or one of {', '.join(ALIASES)})"
            )
        return str(_gguf_to_folder(path, progress)), "gguf"
    if _HUB_ID.match(spec):
        return spec, "hub"
    raise FrontierError(
        f"{spec!r} is not a model: no such file or folder, not a hub id (org/name), "
        f"not a built-in alias ({', '.join(ALIASES)})"
    )


def _gguf_to_folder(path: Path, progress: Progress | None) -> Path:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    dest = settings.home() / "models" / f"gguf-{sha[:16]}"
    if not (dest / "frontier-source.json").is_file():
        if progress:
            progress(f"converting {path.name} to fp32 safetensors (once)")
        try:
            convert_gguf(path, dest, source={"gguf": str(path), "sha256": sha})
        except (OSError, ValueError, KeyError) as exc:
            raise FrontierError(f"{path}: cannot read as a GGUF model ({exc})") from None
    return dest


def load_config(
    spec: str, *, trust_remote_code: bool = False, progress: Progress | None = None
) -> tuple[Any, str, str]:
    """The model's config (checked against the supported families) without its weights."""
    from transformers import AutoConfig

    from frontier.arch import adapter_for

    where, kind = resolve(spec, progress=progress)
    try:
        config = AutoConfig.from_pretrained(where, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise FrontierError(_load_error(spec, kind, exc)) from None
    adapter_for(config)
    return config, where, kind


def load_model(
    spec: str,
    *,
    dtype: str = "fp32",
    device: str = "cpu",
    trust_remote_code: bool = False,
    progress: Progress | None = None,
) -> LoadedModel:
    """Load a causal LM for pruning.

    ``spec`` is a built-in alias (``smollm2-135m``, ``gemma3-270m``), a local Hugging
    Face folder, a ``.gguf`` file, or a hub id (which needs a reachable hub). Weights are
    loaded in ``dtype`` on ``device`` (fp32 on the CPU by default: bf16 matmuls are very
    slow on most CPUs; ``auto`` for either: :mod:`frontier.models.device`), straight
    onto a GPU without a full copy in host memory. A model whose weights do not fit the
    GPU's free memory is a one-line error naming what it needs. Remote code is never run
    unless ``trust_remote_code`` is set.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where_to = resolve_device(device)
    dtype = resolve_dtype(dtype, where_to)
    config, where, kind = load_config(spec, trust_remote_code=trust_remote_code, progress=progress)
    if device_kind(where_to) == "cuda":
        check_fits(spec, config, dtype, where_to, trust_remote_code=trust_remote_code)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            where,
            config=config,
            dtype=torch_dtype(dtype),
            trust_remote_code=trust_remote_code,
            low_cpu_mem_usage=True,
            **({"device_map": {"": where_to}} if where_to != "cpu" else {}),
        )
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise FrontierError(_load_error(spec, kind, exc)) from None
    model.to(where_to).eval()  # type: ignore[arg-type]
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        source=spec,
        name=spec if kind != "folder" else Path(where).name,
        local_dir=where if kind != "hub" else None,
    )


def weight_bytes(config: Any, dtype: str, *, trust_remote_code: bool = False) -> int:
    """Bytes of the model's weights in ``dtype``, counted on the meta device (no memory)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    size = torch_dtype(dtype).itemsize
    return sum(p.numel() for p in model.parameters()) * size


def check_fits(
    spec: str, config: Any, dtype: str, device: str, *, trust_remote_code: bool = False
) -> None:
    """A one-line error when the weights alone would not fit ``device``'s free memory
    (with 10% for activations and the allocator's slack)."""
    import torch

    need = weight_bytes(config, dtype, trust_remote_code=trust_remote_code)
    free, total = torch.cuda.mem_get_info(torch.device(device))
    if need * 1.1 > free:
        gib = 2**30
        raise FrontierError(
            f"{spec} needs about {need * 1.1 / gib:.1f} GiB of GPU memory in {dtype} "
            f"(weights {need / gib:.1f} GiB + 10%); {device} has {free / gib:.1f} of "
            f"{total / gib:.1f} GiB free: use a smaller dtype, another GPU or --device cpu"
        )


def _load_error(spec: str, kind: str, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if kind == "hub":
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        why = "the hub is offline (HF_HUB_OFFLINE=1)" if offline else "the hub is unreachable"
        return (
            f"cannot load hub model {spec!r}: {why} or the id does not exist; "
            f"use a local folder, a .gguf file or an alias ({', '.join(ALIASES)})"
        )
    return f"cannot load {spec}: {first}"
