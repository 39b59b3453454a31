"""Write a pruned checkpoint, prove it reloads to the same model, then put it in place.

The model passed in is the unpruned one: the selection is applied with
:class:`frontier.pruning.surgery.Pruner` for the duration of the export and restored after,
so the caller's model is bit-identical afterwards. Everything is written into a
temporary folder beside ``out``, reloaded the way a user would load that format, and
compared with the in-memory pruned model on a fixed token batch; only a checkpoint
that passes is renamed into place.
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from frontier._io import atomic_dir, write_json_atomic
from frontier._version import __version__
from frontier.arch import MLPAdapter
from frontier.budget import trial_room
from frontier.errors import FrontierError
from frontier.export._gguf import GGUFType, GGUFWritten, LlamaCppCheck, export_gguf
from frontier.export._load import TORCH_DTYPES, load_pruned
from frontier.export._modeling import MODELING_FILE
from frontier.export._modules_file import stored_modules, write_modules
from frontier.export._record import (
    DTYPES,
    RECORD_NAME,
    CompressionRecord,
    ExportDtype,
    ExportFormat,
    Provenance,
    SourceModel,
    read_record,
    repaired_note,
)
from frontier.export._refit_file import read_refit, write_refit
from frontier.export._tensors import rounded_state
from frontier.export.formats import Format, get_format
from frontier.models import LoadedModel
from frontier.pruning.refit import DownWeights
from frontier.pruning.surgery import Pruner, Selection

PROBE_SHAPE = (2, 24)  # batch, tokens: the fixed batch every export is checked on
# A reload must give the logits of the model as written within ATOL + RTOL * |logit|
# (in practice it is bit-exact: same weights, same shapes, same kernels).
ATOL = 1e-5
RTOL = 1e-5
# A padded layer computes the same sum with extra zero terms, but a wider matmul blocks
# its float reduction differently, so the last bits move and the noise grows through
# the layers, in proportion to the logits' overall scale rather than each one's: on
# SmolLM2-135M (30 layers, |logit| up to 39) padded and pruned differ by up to 1.7e-4,
# while fp32 itself is 2.8e-4 (7e-6 x max|logit|) from the same model run in float64.
# Padded exports may differ from the pruned model by 2e-5 x max|logit| (3x that noise).
PADDED_OF_MAX = 2e-5


@dataclass(frozen=True)
class ExportResult:
    """Where an export was written and how it was checked."""

    path: Path
    record: CompressionRecord
    max_abs_logit_diff: float
    weights_bytes: int
    gguf: GGUFWritten | None = None  # format "gguf": the file and how llama.cpp ran it
    llamacpp: LlamaCppCheck | None = None


def export_model(
    lm: LoadedModel,
    selection: Selection,
    out: Path | str,
    *,
    format: ExportFormat = "heterogeneous",
    dtype: ExportDtype = "fp32",
    provenance: Provenance | None = None,
    force: bool = False,
    refit: Sequence[DownWeights | None] | None = None,
    gguf_type: GGUFType = "f32",
    modules: Sequence[dict[str, nn.Module]] | None = None,
    repair: dict[str, Any] | None = None,
    reconstruct: dict[str, Any] | None = None,
) -> ExportResult:
    """Export ``lm`` (unpruned) pruned to ``selection`` as a checkpoint folder ``out``.

    ``refit`` gives the refitted down weights of every layer (from
    :meth:`frontier.pruning.operator.PruningOperator.weights`); they are applied, written in every
    format, and stored beside ``compression.json`` for :func:`apply_compression`.

    Formats: ``uniform`` (stock checkpoint; every layer must keep the same width),
    ``padded`` (stock checkpoint at the widest kept width, the rest zero: same outputs)
    and ``heterogeneous`` (exact per-layer widths; load with :func:`load_pruned` or
    ``trust_remote_code=True``), and ``gguf`` (one GGUF file for llama.cpp, of type
    ``gguf_type``; see :mod:`frontier.export._gguf`). ``out`` must not hold anything
    unless ``force``.

    ``modules``: per layer, projections to export instead of the cut ones (a repair's or
    a local reconstruction's). With ``reconstruct`` (the reconstruction's record) they
    are stored beside ``compression.json`` (``reconstruct.safetensors``), so
    :func:`apply_compression` rebuilds the export bit for bit.
    """
    out = Path(out)
    _check_out(out, force=force)
    kind = get_format(format)
    if dtype not in DTYPES:
        raise FrontierError(f"unknown dtype {dtype!r}; one of {', '.join(DTYPES)}")
    model: Any = lm.model  # a transformers PreTrainedModel
    adapter = lm.adapter
    plan = selection.plan
    full = adapter.full_widths(model)
    if plan.full != full:
        raise FrontierError(
            "selection is for MLP widths that differ from this model's "
            "(is a plan already applied to it, or is it another model?)"
        )
    kind.check(plan)
    fingerprint = lm.fingerprint  # of the unpruned weights: computed before pruning
    record = CompressionRecord(
        plan=plan,
        kept=selection.to_lists(),
        model_type=str(model.config.model_type),
        source=SourceModel(lm.name, lm.source, fingerprint),
        export_format=format,
        dtype=dtype,
        provenance=provenance or Provenance(),
        versions=_versions(),
        repair=repair,
    )
    torch_dtype = TORCH_DTYPES[dtype]
    pruner = Pruner(model, adapter=adapter)  # surgery only: the selection is given
    was_training = model.training
    model.eval()
    # on a GPU without room for both, the unpruned projections wait in host memory
    pruner.apply(selection, refit=refit, room=trial_room(model))
    try:
        if modules is not None:
            _put_modules(pruner, modules, plan.widths)
        if not kind.checkpoint:  # gguf: written and checked in llama.cpp
            return _gguf_result(out, lm, plan.widths, gguf_type, record, refit)
        ids = _probe_ids(model, adapter)
        reference = _logits(model, ids, torch_dtype)
        with atomic_dir(out) as tmp:
            kind.write(tmp, model, adapter, pruner, plan.widths, torch_dtype)
            if lm.tokenizer is not None:
                lm.tokenizer.save_pretrained(tmp)
            if refit is not None and any(r is not None for r in refit):
                record = replace(record, refit=write_refit(tmp, refit))
            if reconstruct is not None and modules is not None:
                entry = write_modules(tmp, modules)
                record = replace(record, reconstruct={**reconstruct, **entry})
            write_json_atomic(tmp / RECORD_NAME, record.to_dict())
            written = _logits(model, ids, torch_dtype)  # the model as written (padded, say)
            scale = float(reference.abs().max())
            atol = (ATOL + PADDED_OF_MAX * scale) if kind.padded else ATOL
            _check(written, reference, "padding", atol, RTOL)
            diff = _verify(tmp, kind, ids, written, _param_dtype(model))
            diff = max(diff, float((written - reference).abs().max()))
            record = replace(
                record,
                verification={
                    "max_abs_logit_diff": diff,
                    "probe_shape": list(ids.shape),
                    "atol": atol,
                    "rtol": RTOL,
                },
            )
            write_json_atomic(tmp / RECORD_NAME, record.to_dict())
    finally:
        pruner.restore()
        model.train(was_training)
    size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    return ExportResult(path=out, record=record, max_abs_logit_diff=diff, weights_bytes=size)


def apply_compression(
    record_path: Path | str,
    lm: LoadedModel,
    out: Path | str,
    *,
    format: ExportFormat | None = None,
    dtype: ExportDtype | None = None,
    force: bool = False,
    check_source: bool = True,
    gguf_type: GGUFType | None = None,
) -> ExportResult:
    """Rebuild an export from the original model and a ``compression.json`` (no calibration).

    With the record's format and dtype the weights are bit-identical to the original
    export's; refitted down weights come from the ``refit.safetensors`` beside the
    record. ``check_source=False`` applies the kept indices to a model other than the one
    they were chosen on (same architecture and widths).
    """
    record_path = Path(record_path)
    record = read_record(record_path)
    if record.repair is not None:
        raise FrontierError(f"{record_path}: {repaired_note(record)}")
    model_type = str(cast(Any, lm.model).config.model_type)
    if record.model_type != model_type:
        raise FrontierError(
            f"{record_path}: made for a {record.model_type} model, this one is {model_type}"
        )
    if check_source and record.source.fingerprint != lm.fingerprint:
        raise FrontierError(
            f"{record_path}: made from {record.source.name} (fingerprint "
            f"{record.source.fingerprint[:12]}), not from {lm.name} ({lm.fingerprint[:12]}); "
            "disable the source check to apply it anyway"
        )
    if record.plan.full != lm.adapter.full_widths(lm.model):
        raise FrontierError(f"{record_path}: plan is for other MLP widths than this model's")
    selection = Selection.from_lists(record.plan, record.kept)
    refit = None
    folder = record_path if record_path.is_dir() else record_path.parent
    if record.refit is not None:
        refit = read_refit(folder, record.refit, record.plan.n_layers, _device(lm.model))
    modules, reconstruct = stored_modules(folder, record, lm, selection, refit)
    return export_model(
        lm,
        selection,
        out,
        format=format or record.export_format,
        dtype=dtype or record.dtype,
        provenance=record.provenance,
        force=force,
        refit=refit,
        gguf_type=cast(GGUFType, gguf_type or record.gguf_type or "f32"),
        modules=modules,
        reconstruct=reconstruct,
    )


def _put_modules(
    pruner: Pruner, modules: Sequence[dict[str, nn.Module]], widths: tuple[int, ...]
) -> None:
    """Swap given projections in over the pruner's (its restore() puts the originals back)."""
    if len(modules) != len(pruner.handles):
        raise FrontierError(f"{len(modules)} layers of modules for {len(pruner.handles)} layers")
    for h, layer in zip(pruner.handles, modules, strict=True):
        for name, module in layer.items():
            if name not in (*pruner.adapter.up, pruner.adapter.down):
                raise FrontierError(f"layer {h.index}: {name!r} is not an MLP projection")
            if _width(module, name, pruner.adapter) != widths[h.index]:
                raise FrontierError(f"layer {h.index}: {name} has another width than the plan")
            h.set(name, module)


def _width(module: nn.Module, name: str, adapter: MLPAdapter) -> int:
    from frontier.arch import WeightLayout

    w = cast(torch.Tensor, module.weight)
    linear = adapter.layout is WeightLayout.LINEAR
    if name == adapter.down:
        return int(w.shape[1] if linear else w.shape[0])
    rows = int(w.shape[0] if linear else w.shape[1])
    return rows // 2 if adapter.fused_gate_up else rows


# -- writing ----------------------------------------------------------------------------
def _gguf_result(
    out: Path,
    lm: LoadedModel,
    widths: tuple[int, ...],
    gguf_type: GGUFType,
    record: Any,
    refit: Sequence[DownWeights | None] | None,
) -> ExportResult:
    record, written, check = export_gguf(
        out,
        lm.model,
        lm.tokenizer,
        widths,
        gguf_type,
        record,
        name=lm.name,
        threads=max(1, torch.get_num_threads()),
        refit=refit,
    )
    diff = check.max_abs_logprob_diff
    return ExportResult(out, record, diff, written.tensor_bytes, gguf=written, llamacpp=check)


# -- checking ---------------------------------------------------------------------------
def _verify(
    folder: Path, kind: Format, ids: torch.Tensor, written: torch.Tensor, dtype: torch.dtype
) -> float:
    """Largest |logit difference| to the model as written, over every way to load the format."""
    from transformers import AutoModelForCausalLM

    loaders: list[tuple[str, Any]] = []
    if kind.remote_code:
        loaders.append(("load_pruned", lambda: load_pruned(folder, dtype=_name(dtype))[0]))
        loaders.append(("trust_remote_code", lambda: _load_remote_code(folder, dtype)))
    else:
        loaders.append(
            ("from_pretrained", lambda: AutoModelForCausalLM.from_pretrained(folder, dtype=dtype))
        )
    worst = 0.0
    for how, load in loaders:
        reloaded = load().eval()
        got = _logits(reloaded, ids.to(_device(reloaded)), None).to(written.device)
        del reloaded
        gc.collect()
        worst = max(worst, _check(got, written, f"reloading with {how}", ATOL, RTOL))
    return worst


def _load_remote_code(folder: Path, dtype: torch.dtype) -> Any:
    """Load with ``trust_remote_code`` as a user would, without leaving a module copy behind.

    transformers copies the modeling file into its modules cache under the folder's
    name; the check runs in a temporary folder whose name is never used again.
    """
    from transformers import AutoModelForCausalLM
    from transformers.dynamic_module_utils import HF_MODULES_CACHE, TRANSFORMERS_DYNAMIC_MODULE_NAME

    root = Path(HF_MODULES_CACHE) / TRANSFORMERS_DYNAMIC_MODULE_NAME
    before = set(root.iterdir()) if root.is_dir() else set()
    try:
        return AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True, dtype=dtype)
    finally:
        for new in (set(root.iterdir()) if root.is_dir() else set()) - before:
            if new.is_dir() and all(_ours(p) for p in new.rglob("*") if p.is_file()):
                shutil.rmtree(new, ignore_errors=True)


def _ours(path: Path) -> bool:
    return path.name in (MODELING_FILE, "__init__.py") or path.parent.name == "__pycache__"


def _check(got: torch.Tensor, want: torch.Tensor, what: str, atol: float, rtol: float) -> float:
    diff = (got - want).abs()
    if not bool((diff <= atol + rtol * want.abs()).all()):
        raise FrontierError(
            f"export check failed: {what} changes the logits by up to {float(diff.max()):.3g} "
            f"(allowed {atol:g} + {rtol:g}*|logit|); nothing written"
        )
    return float(diff.max())


@torch.no_grad()
def _logits(model: nn.Module, ids: torch.Tensor, round_to: torch.dtype | None) -> torch.Tensor:
    """fp32 logits; with ``round_to``, of the weights rounded to that dtype (not in place)."""
    kwargs = {"input_ids": ids, "use_cache": False}
    if round_to is None or round_to == _param_dtype(model):
        return cast(torch.Tensor, model(**kwargs).logits.float())
    state = rounded_state(model, round_to)
    out = torch.func.functional_call(model, state, args=(), kwargs=kwargs)
    return cast(torch.Tensor, out.logits.float())


def _probe_ids(model: Any, adapter: MLPAdapter) -> torch.Tensor:
    vocab = int(adapter.decoder_config(model.config).vocab_size)
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, vocab, PROBE_SHAPE, generator=gen).to(_device(model))


# -- small helpers ----------------------------------------------------------------------
def _check_out(out: Path, *, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FrontierError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FrontierError(f"{out} is not empty; choose another folder or force overwriting")


def _param_dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _name(dtype: torch.dtype) -> Any:
    return {v: k for k, v in TORCH_DTYPES.items()}[dtype]


def _versions() -> dict[str, str]:
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "frontier": __version__,
    }
