"""Export a study's trial as a checkpoint: the same plan, operator and model the study used."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import optuna

from frontier.errors import FrontierError
from frontier.export import (
    ExportDtype,
    ExportFormat,
    ExportResult,
    GGUFType,
    Provenance,
    export_model,
)
from frontier.models import LoadedModel
from frontier.pruning.operator import PruningOperator
from frontier.pruning.surgery import Selection
from frontier.search import storage as st
from frontier.search.applied import check_applied, operator_alphas
from frontier.search.context import build_operator, study_model
from frontier.study.read import read_trial
from frontier.study.schema import ATTR_APPLIED, ATTR_PROTOCOL
from frontier.study.spec import StudySpec


def _flat_metrics(rec: Mapping[str, Any], prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in rec.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    for task, d in (rec.get("tasks") or {}).items():
        if isinstance(d, dict) and isinstance(d.get("acc"), (int, float)):
            out[f"{prefix}acc:{task}"] = float(d["acc"])
    return out


def export(
    study: optuna.Study,
    trial: int | None,
    out: Path | str,
    *,
    format: ExportFormat = "heterogeneous",
    dtype: ExportDtype | None = None,
    force: bool = False,
    gguf_type: GGUFType = "f32",
    device: str | None = None,
) -> ExportResult:
    """``frontier export``: :func:`export_trial` of trial ``trial``, by default the chosen
    one (an error naming the nearest trial where the study has none)."""
    from frontier.study.read import chosen_number

    number = chosen_number(study) if trial is None else trial
    return export_trial(
        study,
        number,
        Path(out),
        format=format,
        dtype=dtype,
        force=force,
        gguf_type=gguf_type,
        device=device,
    )


@dataclass
class TrialPoint:
    """A study trial rebuilt: the unpruned model, its operator, the trial's selection."""

    spec: StudySpec
    lm: LoadedModel
    operator: PruningOperator
    selection: Selection
    provenance: Provenance


def trial_point(study: optuna.Study, number: int, *, device: str | None = None) -> TrialPoint:
    """Rebuild trial ``number``'s selection with the study's operator.

    The operator (scores, and the refit's Gram matrices) is rebuilt from the same
    calibration tokens (normally a cache hit), and the model's weights must be the ones
    the study searched: the model loads in the study's dtype (its fingerprint covers the
    dtype), on ``device`` (default: the study's). Kept neurons or ridge strengths that
    differ from those the trial recorded when measured are refused
    (:func:`frontier.search.applied.check_applied`).
    """
    spec = st.stored_spec(study)
    trial = read_trial(study, number)
    if trial.plan is None:
        raise FrontierError(f"trial {number} has no plan (state {trial.state})")
    if spec.compensate:
        raise FrontierError(
            "this study used bias compensation, which the export formats do not carry; "
            "the refit (the default operator) subsumes it and exports"
        )
    lm = study_model(study, spec, device=device)
    operator = build_operator(spec, lm)
    scores = operator.scores
    selection = operator.select(trial.plan)
    # refuse a rebuild other than what the trial measured (scores or alphas that moved)
    recorded = study.get_trials(deepcopy=False)[number].user_attrs.get(ATTR_APPLIED)
    protocol = study.user_attrs.get(ATTR_PROTOCOL) or {}
    check_applied(
        recorded,
        selection,
        operator_alphas(operator),
        number=number,
        study_alphas=(protocol.get("operator") or {}).get("alpha"),
    )
    metrics = _flat_metrics(trial.search, "search:")
    metrics.update(_flat_metrics(trial.final or {}, "final:"))
    provenance = Provenance(
        criterion=spec.criterion,
        calibration_fingerprint=scores.calibration.get("fingerprint"),
        study=study.study_name,
        trial=number,
        metrics=metrics,
        operator={**operator.describe(), "calibration": scores.calibration},
    )
    return TrialPoint(spec, lm, operator, selection, provenance)


def export_trial(
    study: optuna.Study,
    number: int,
    out: Path,
    *,
    format: ExportFormat = "heterogeneous",
    dtype: ExportDtype | None = None,
    force: bool = False,
    gguf_type: GGUFType = "f32",
    device: str | None = None,
) -> ExportResult:
    """Rebuild trial ``number``'s pruned model from the study's settings (on ``device``,
    default the study's) and export it, in ``dtype`` (default: the study's, so the export
    holds the weights its figures were measured with)."""
    point = trial_point(study, number, device=device)
    saved = dtype or cast(ExportDtype, point.spec.dtype)
    return export_model(
        point.lm,
        point.selection,
        out,
        format=format,
        dtype=saved,
        provenance=point.provenance,
        force=force,
        refit=point.operator.weights(point.selection),
        gguf_type=gguf_type,
    )
