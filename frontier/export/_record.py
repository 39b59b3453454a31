"""``compression.json``: what an export is, where it came from, and how to rebuild it.

The record holds the kept neuron indices of every layer, so ``apply`` can rebuild the
exact checkpoint from the original model without calibration data. When the operator
refitted the kept down-projection columns, the refitted weights are stored beside it
(``refit.safetensors``, named with its sha256 in the record) and ``apply`` uses them as
they are: no Gram matrix or calibration pass is needed, and the rebuild is bit for bit.
Reading it is strict: a truncated or hand-broken file is a one-line :class:`FrontierError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from frontier.errors import FrontierError
from frontier.export.formats import FORMATS
from frontier.pruning.plan import Plan

RECORD_NAME = "compression.json"
REFIT_NAME = "refit.safetensors"
RECONSTRUCT_NAME = "reconstruct.safetensors"
RECORD_FORMAT = 1

#: a name in :data:`frontier.export.formats.FORMATS` (checked where it is read)
ExportFormat = str
ExportDtype = Literal["fp32", "fp16", "bf16"]
DTYPES: tuple[str, ...] = get_args(ExportDtype)


@dataclass(frozen=True)
class Provenance:
    """Where a selection came from; every field is optional and only recorded."""

    criterion: str | None = None
    calibration_fingerprint: str | None = None
    study: str | None = None
    trial: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    # the pruning operator (frontier.pruning.operator.PruningOperator.describe()) and its inputs
    operator: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "calibration_fingerprint": self.calibration_fingerprint,
            "study": self.study,
            "trial": self.trial,
            "metrics": dict(self.metrics),
            "operator": None if self.operator is None else dict(self.operator),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        metrics = data.get("metrics") or {}
        if not isinstance(metrics, dict):
            raise FrontierError("provenance metrics must be an object")
        trial = data.get("trial")
        operator = data.get("operator")
        if operator is not None and not isinstance(operator, dict):
            raise FrontierError("provenance operator must be an object")
        return cls(
            operator=operator,
            criterion=_opt_str(data.get("criterion")),
            calibration_fingerprint=_opt_str(data.get("calibration_fingerprint")),
            study=_opt_str(data.get("study")),
            trial=None if trial is None else int(trial),
            metrics={str(k): float(v) for k, v in metrics.items()},
        )


@dataclass(frozen=True)
class SourceModel:
    """The unpruned model an export was cut from; ``fingerprint`` is checked by ``apply``."""

    name: str
    source: str
    fingerprint: str


@dataclass(frozen=True)
class CompressionRecord:
    """Everything ``compression.json`` says about one export."""

    plan: Plan
    kept: list[list[int]]
    model_type: str
    source: SourceModel
    export_format: ExportFormat
    dtype: ExportDtype
    provenance: Provenance = field(default_factory=Provenance)
    versions: dict[str, str] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    # {"file": REFIT_NAME, "sha256": ..., "layers": [refitted layer indices]} or None
    refit: dict[str, Any] | None = None
    gguf_type: str | None = None  # only for export_format "gguf": f32, f16, q8_0, q4_k_m
    # set when the pruned weights were repaired (see frontier.repair): then the kept indices
    # alone do not rebuild the weights, and this says how they were trained
    repair: dict[str, Any] | None = None
    # set when the pruned MLPs were reconstructed locally (frontier.reconstruct): how, and
    # {"file": RECONSTRUCT_NAME, "sha256": ..., "layers": [...]}, the projections as applied
    reconstruct: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.gguf_type is None else {"gguf_type": self.gguf_type}
        out = {
            "record_format": RECORD_FORMAT,
            "export_format": self.export_format,
            "dtype": self.dtype,
            "model_type": self.model_type,
            "plan": self.plan.to_dict(),
            "kept": self.kept,
            "source": {
                "name": self.source.name,
                "source": self.source.source,
                "fingerprint": self.source.fingerprint,
            },
            **self.provenance.to_dict(),
            "versions": dict(self.versions),
            "verification": dict(self.verification),
            "refit": None if self.refit is None else dict(self.refit),
            **extra,
        }
        if self.repair is not None:
            out["repair"] = dict(self.repair)
        if self.reconstruct is not None:
            out["reconstruct"] = dict(self.reconstruct)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompressionRecord:
        if data.get("record_format") != RECORD_FORMAT:
            raise FrontierError(f"unsupported record_format {data.get('record_format')!r}")
        fmt, dtype = data.get("export_format"), data.get("dtype")
        if fmt not in FORMATS:
            raise FrontierError(f"export_format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if dtype not in DTYPES:
            raise FrontierError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        try:
            src = data["source"]
            kept = [[int(i) for i in layer] for layer in data["kept"]]
            return cls(
                plan=Plan.from_dict(data["plan"]),
                kept=kept,
                model_type=str(data["model_type"]),
                source=SourceModel(str(src["name"]), str(src["source"]), str(src["fingerprint"])),
                export_format=str(fmt),
                dtype=cast(ExportDtype, dtype),
                provenance=Provenance.from_dict(data),
                versions={str(k): str(v) for k, v in (data.get("versions") or {}).items()},
                verification=dict(data.get("verification") or {}),
                refit=_refit_entry(data.get("refit")),
                gguf_type=_opt_str(data.get("gguf_type")),
                repair=_opt_dict(data.get("repair")),
                reconstruct=_reconstruct_entry(data.get("reconstruct")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FrontierError(
                f"malformed compression record: {type(exc).__name__} {exc}"
            ) from None


def read_record(path: Path) -> CompressionRecord:
    """Read ``compression.json`` (or the export folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_NAME
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FrontierError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrontierError(f"{path}: not valid JSON (truncated or corrupted?): {exc}") from None
    if not isinstance(data, dict):
        raise FrontierError(f"{path}: expected a JSON object")
    try:
        return CompressionRecord.from_dict(data)
    except FrontierError as exc:
        raise FrontierError(f"{path}: {exc}") from None


def repaired_note(record: CompressionRecord) -> str:
    """Why ``apply`` cannot rebuild a repaired export, and how to make it again."""
    prov = record.provenance
    repair = record.repair or {}
    cfg = repair.get("config") or {}
    again = (
        f"frontier repair {prov.study} {prov.trial} --seed {cfg.get('seed')} "
        f"--steps {cfg.get('steps')} --lr {cfg.get('lr')}"
        if prov.study is not None
        else "the same frontier.repair.repair call"
    )
    return (
        "a repaired export: its weights were trained after pruning, so the kept indices "
        f"alone do not rebuild them; it can only be reproduced by repeating the repair ({again}, "
        "with the settings recorded under 'repair' in compression.json)"
    )


def _opt_dict(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("repair must be an object")
    return dict(value)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _refit_entry(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("sha256"), str):
        raise FrontierError("refit must be an object naming its file and sha256")
    if value.get("file") != REFIT_NAME:
        raise FrontierError(f"refit file must be {REFIT_NAME}, got {value.get('file')!r}")
    return dict(value)


def _reconstruct_entry(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("sha256"), str):
        raise FrontierError("reconstruct must be an object naming its file and sha256")
    if value.get("file") != RECONSTRUCT_NAME:
        raise FrontierError(
            f"reconstruct file must be {RECONSTRUCT_NAME}, got {value.get('file')!r}"
        )
    return dict(value)
