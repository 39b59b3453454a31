"""Export pruned models as checkpoints others can load, and rebuild them from a record.

Four formats (see :func:`export_model`): ``uniform`` and ``padded`` are stock
transformers checkpoints; ``heterogeneous`` keeps exact per-layer widths and ships a
small modeling file; ``gguf`` is one file for llama.cpp (exact widths for Llama-style
families through its ``deci`` architecture). Every export carries ``compression.json``
(:class:`CompressionRecord`), from which :func:`apply_compression` rebuilds the same
weights bit for bit.
"""

from __future__ import annotations

from frontier.export._export import ExportResult, apply_compression, export_model
from frontier.export._gguf import GGUF_TYPES, GGUFType, GGUFWritten, LlamaCppCheck
from frontier.export._load import load_pruned
from frontier.export._record import (
    RECORD_NAME,
    CompressionRecord,
    ExportDtype,
    ExportFormat,
    Provenance,
    SourceModel,
    read_record,
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
    "apply_compression",
    "export_model",
    "load_pruned",
    "read_record",
]
