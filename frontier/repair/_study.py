"""Repair a study's trial and export it: the command behind ``frontier repair``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import optuna

from frontier.errors import FrontierError
from frontier.export import ExportDtype, ExportFormat, ExportResult, export_model
from frontier.models import LoadedModel
from frontier.repair._config import RepairConfig
from frontier.repair._data import repair_data
from frontier.repair._progress import Reporter
from frontier.repair._record import repair_record
from frontier.repair._trainer import RepairResult, repair

if TYPE_CHECKING:
    from frontier.reconstruct import ReconstructConfig, ReconstructResult
from frontier.search.context import report_objectives
from frontier.search.export import trial_point
from frontier.search.final_looks import record_looks
from frontier.search.trial import record
from frontier.study.read import chosen_number, final_record
from objectives import Objective, create

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RepairedExport:
    """The export, the repair (global distillation, local reconstruction or both), and the
    report figures before and after it."""

    export: ExportResult
    result: RepairResult | None  # the distillation; None for a local reconstruction alone
    trial: int
    before: dict[str, Any]
    after: dict[str, Any]
    local: ReconstructResult | None = None


def measure_report(
    objectives: dict[str, Objective], size: Objective, lm: LoadedModel
) -> dict[str, Any]:
    """The model's figures under the study's report protocol, shaped as a trial's final record."""
    tasks = objectives["tasks"].evaluate(lm) if "tasks" in objectives else None
    return dict(record(size.evaluate(lm), objectives["ppl"].evaluate(lm), tasks))


def repair_trial(
    study: optuna.Study,
    number: int | None,
    out: Path,
    config: RepairConfig,
    *,
    format: ExportFormat = "heterogeneous",
    dtype: ExportDtype | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
    device: str | None = None,
    progress: Progress | None = None,
    local: ReconstructConfig | None = None,
    distil: bool = True,
) -> RepairedExport:
    """Repair trial ``number`` (default: the study's chosen point) and export the result.

    The repair reads the calibration role of the study's calibration text; the report
    figures before and after it are measured with the study's report protocol. The model
    loads in the study's dtype on ``device`` (default: the study's); the export is saved
    in ``dtype`` (default: the study's).

    ``local``: reconstruct every pruned MLP first (:func:`frontier.reconstruct.reconstruct`,
    on the same calibration text), then distil from there, or, not ``distil``, export the
    reconstruction alone (which ``apply`` rebuilds bit for bit: no distillation record).
    """
    if local is None and not distil:
        raise FrontierError("nothing to do: neither a local reconstruction nor a distillation")
    say = progress or (lambda _m: None)
    number = chosen_number(study) if number is None else number
    if out.exists() and out.is_dir() and any(out.iterdir()) and not force:
        raise FrontierError(f"{out} is not empty; choose another folder or force overwriting")
    point = trial_point(study, number, device=device)
    lm, spec = point.lm, point.spec
    config = dataclasses.replace(
        config, text=spec.calibration_text, seq_len=min(config.seq_len, lm.max_length)
    )
    say("measuring the unpruned model on held-out text (cached after the study)")
    stored = final_record(study, number)
    # after the repair, the documents and looks the stored record used
    objectives = report_objectives(spec, lm, replay=record_looks(stored))
    size = create("params")
    size.prepare(lm)
    if stored is not None:
        before: dict[str, Any] = dict(stored)
    else:
        say(f"measuring trial {number} before repair")
        with point.operator.pruned(point.selection):
            before = measure_report(objectives, size, lm)
    before = {k: v for k, v in before.items() if k not in ("violations", "feasible")}
    data = repair_data(
        config.text,
        lm.tokenizer,
        seq_len=config.seq_len,
        heldout_tokens=config.heldout_tokens,
        heldout_fraction=config.heldout_fraction,
        max_train_tokens=config.steps * config.batch_windows * config.seq_len,
    )
    op, selection = point.operator, point.selection
    built = None
    result = None
    try:
        if local is not None:
            built = _local(op, selection, lm, spec.calibration_text, local, say)
        if distil:
            if built is not None:
                op.restore()
            start = None if built is None else built.modules
            result = repair(op, selection, data, config, reporter=reporter, start=start)
        say("measuring the repaired model on held-out text")
        after = measure_report(objectives, size, lm)
    finally:
        op.restore()
    rec = (
        None if result is None else repair_record(result, report_before=before, report_after=after)
    )
    recon = None
    if built is not None:
        from frontier.reconstruct import reconstruct_record

        recon = reconstruct_record(built)
        if result is None:
            recon = {**recon, "report_before": before, "report": after}
    modules = result.modules if result is not None else built.modules if built else None
    say(f"exporting to {out}")
    exported = export_model(
        lm,
        point.selection,
        out,
        format=format,
        dtype=dtype or cast(ExportDtype, spec.dtype),
        provenance=point.provenance,
        force=force,
        modules=modules,
        repair=rec,
        reconstruct=recon,
    )
    return RepairedExport(exported, result, number, before, after, built)


def _local(
    op: Any, selection: Any, lm: LoadedModel, text: str, config: ReconstructConfig, say: Progress
) -> ReconstructResult:
    """The local reconstruction of ``selection`` on the calibration role of ``text``."""
    from frontier.reconstruct import reconstruct

    config = dataclasses.replace(config, text=text, seq_len=min(config.seq_len, lm.max_length))
    data = repair_data(
        config.text,
        lm.tokenizer,
        seq_len=config.seq_len,
        heldout_tokens=config.heldout_tokens,
        heldout_fraction=config.heldout_fraction,
        max_train_tokens=config.train_tokens,
    )
    return reconstruct(op, selection, data, config, progress=say)
