"""Export pruned models as checkpoints others can load, and rebuild them from a record.

Four formats (see :func:`export_model`): ``uniform`` and ``padded`` are stock
transformers checkpoints; ``heterogeneous`` keeps exact per-layer widths and ships a
small modeling file; ``gguf`` is one file for llama.cpp (exact widths for Llama-style
families through its ``deci`` architecture). Every export carries ``compression.json``
(:class:`CompressionRecord`), from which :func:`apply_compression` rebuilds the same
weights bit for bit.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from frontier.export._export import ExportResult, apply_compression, export_model
    from frontier.export._gguf import GGUF_TYPES, GGUFType, GGUFWritten, LlamaCppCheck
    from frontier.export._gguf_report import gguf_lines
    from frontier.export._load import export_format, load_pruned
    from frontier.export._record import (
        RECORD_NAME,
        CompressionRecord,
        ExportDtype,
        ExportFormat,
        Provenance,
        SourceModel,
        read_record,
    )
    from frontier.models import LoadedModel

# Names load on first use, so that the CLI's parser (which reads the format registry,
# frontier.export.formats) does not import torch.
_WHERE = {
    "ExportResult": "_export",
    "apply_compression": "_export",
    "export_model": "_export",
    "GGUF_TYPES": "_gguf",
    "GGUFType": "_gguf",
    "GGUFWritten": "_gguf",
    "LlamaCppCheck": "_gguf",
    "gguf_lines": "_gguf_report",
    "export_format": "_load",
    "load_pruned": "_load",
    "RECORD_NAME": "_record",
    "CompressionRecord": "_record",
    "ExportDtype": "_record",
    "ExportFormat": "_record",
    "Provenance": "_record",
    "SourceModel": "_record",
    "read_record": "_record",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'frontier.export' has no attribute {name!r}")
    return getattr(importlib.import_module(f"frontier.export.{_WHERE[name]}"), name)


def apply(
    source: Path | str,
    model: LoadedModel | str,
    out: Path | str,
    *,
    format: ExportFormat | None = None,
    dtype: ExportDtype | None = None,
    force: bool = False,
    check_source: bool = True,
    gguf_type: GGUFType | None = None,
    trust_remote_code: bool = False,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """``frontier apply``: :func:`apply_compression` of ``source`` (an export folder or
    its ``compression.json``) to ``model`` (loaded, or anything ``load_model`` takes: in
    fp32 on ``device``)."""
    from frontier.export._export import apply_compression
    from frontier.models import load_model

    lm = (
        load_model(model, device=device, trust_remote_code=trust_remote_code, progress=progress)
        if isinstance(model, str)
        else model
    )
    return apply_compression(
        source,
        lm,
        out,
        format=format,
        dtype=dtype,
        force=force,
        check_source=check_source,
        gguf_type=gguf_type,
    )


__all__ = [
    "GGUF_TYPES",
    "RECORD_NAME",
    "CompressionRecord",
    "ExportDtype",
    "ExportFormat",
    "ExportResult",
    "GGUFType",
    "GGUFWritten",
    "LlamaCppCheck",
    "Provenance",
    "SourceModel",
    "apply",
    "apply_compression",
    "export_format",
    "export_model",
    "gguf_lines",
    "load_pruned",
    "read_record",
]
