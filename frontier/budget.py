"""What this machine has and what a run may take of it: the host budget (``--memory``, else
a share of what is available), the layout a loaded model gets within it (checked before
anything is computed), and the room a trial has on its GPU now. The figures a run needs
come from :mod:`frontier.memory`; this module reads the machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from frontier.errors import FrontierError
from frontier.memory import GIB, TRIAL_MARGIN, Layout, mlp_shape, plan_layout, trial_logits_bytes

# the share of (available + this process's) host memory a run plans to use by default: the
# rest stays for the page cache, which the lean path reads its layers back through
DEFAULT_SHARE = 0.7
# what check_disk leaves free on the cache's disk beside what a run writes
DISK_MARGIN = GIB


def resident_bytes() -> int:
    """This process's resident memory now."""
    import resource

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def host_budget() -> int | None:
    """The host bytes a run may use in all: the ``--memory`` setting, else
    :data:`DEFAULT_SHARE` of what this process holds and the machine has available
    (None where that cannot be read)."""
    from frontier import settings

    chosen = settings.memory_budget()
    if chosen is not None:
        return chosen
    have = available_host_bytes()
    if have is None:
        return None
    return int((have + resident_bytes()) * DEFAULT_SHARE)


def layout_for(
    model: Any, *, refit: bool, grams: bool, batch_tokens: int, calibration_tokens: int = 0
) -> Layout | None:
    """The layout of a run on the loaded ``model`` (a LoadedModel) within
    :func:`host_budget`, checked first (a one-line error where even the lean path does
    not fit); None for a config without the shapes (the operator says what is wrong)."""
    import torch

    dtype = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(
        next(model.model.parameters()).dtype, "fp32"
    )
    on_gpu = model.device.type == "cuda"
    gpu_bytes = torch.cuda.get_device_properties(model.device).total_memory if on_gpu else None
    try:
        mlp_shape(model.model.config)
    except FrontierError:
        return None
    try:
        return plan_layout(
            model.model.config,
            dtype,
            refit=refit,
            grams=grams,
            compact=on_gpu,
            batch_tokens=batch_tokens,
            budget=host_budget(),
            on_gpu=on_gpu,
            gpu_bytes=gpu_bytes,
            calibration_tokens=calibration_tokens,
        )
    except FrontierError as exc:
        raise FrontierError(f"{model.name} {exc}") from None


def trial_room(model: Any) -> int | None:
    """The GPU bytes a trial's pruned projections may take beside ``model`` (a causal LM)
    now: what is free on its device (the caching allocator's unused blocks too), less a
    search evaluation's logits and :data:`TRIAL_MARGIN`. None off a GPU (nothing is
    parked there)."""

    device = next(model.parameters()).device
    if device.type != "cuda":
        return None
    vocab = int(model.get_output_embeddings().weight.shape[0])
    return gpu_free_bytes(device) - trial_logits_bytes(vocab) - TRIAL_MARGIN


def gpu_free_bytes(device: Any) -> int:
    """What a CUDA ``device`` can still give this process: its free memory and the caching
    allocator's reserved but unused blocks."""
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def check_disk(folder: Path, need: int, what: str) -> None:
    """Refuses in one line, before anything is written, a run whose ``need`` bytes of
    ``what`` (per-layer files in ``folder``) do not fit the disk's free space with
    :data:`DISK_MARGIN` to spare. Layers already written there count as done: a resumed run
    needs only the rest. (A full disk part-way through an hour's calibration would lose
    the pass's unsaved layers and stop in an error from deep inside a write.)"""
    done = sum(f.stat().st_size for f in folder.glob("layer-*.bin")) if folder.is_dir() else 0
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need - done > free - DISK_MARGIN:
        raise FrontierError(
            f"{what} need about {need / GIB:.1f} GiB of disk in {folder.parent} "
            f"({done / GIB:.1f} GiB written before) and {free / GIB:.1f} GiB is free: "
            "free some space, or set FRONTIER_HOME to a larger disk"
        )


def available_host_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
