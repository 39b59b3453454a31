"""Re-measure an exported checkpoint with its study's report protocol, and compare.

A user who deploys an export wants to know that the file on disk is the point the report
describes. :func:`verify_export` loads the export the way a serving stack would (plain
``transformers``; ``trust_remote_code=True`` for the heterogeneous format, whose model
class ships in the folder), measures it on the study's held-out text and report
documents, and sets each figure beside the one the study recorded for that trial.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from frontier.errors import FrontierError
from frontier.export import export_format, read_record
from frontier.export.formats import get_format
from frontier.models import LoadedModel
from frontier.models.device import torch_dtype
from frontier.pruning.surgery import count_parameters
from frontier.search import storage as st
from frontier.search.context import report_objectives, study_model
from frontier.search.final_looks import record_looks
from frontier.study.read import read_trial

Progress = Callable[[str], None]

#: Perplexity may differ by float reassociation (other matmul shapes); relative tolerance.
PPL_RTOL = 1e-4
#: Accuracies are means over documents; a flipped document shows far above this.
ACC_ATOL = 1e-4


@dataclass(frozen=True)
class Check:
    """One figure: as the study's report has it, and as measured on the export."""

    metric: str
    reported: float
    measured: float
    ok: bool

    @property
    def difference(self) -> float:
        return self.measured - self.reported


@dataclass(frozen=True)
class Verification:
    folder: Path
    export_format: str
    trust_remote_code: bool
    study: str
    trial: int
    parameters: int
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _check(metric: str, reported: Any, measured: float, *, relative: bool) -> Check:
    if not isinstance(reported, (int, float)) or not math.isfinite(float(reported)):
        raise FrontierError(f"the study recorded no finite {metric} for this trial")
    want = float(reported)
    gap = abs(measured - want)
    ok = gap <= (PPL_RTOL * abs(want) if relative else ACC_ATOL)
    return Check(metric, want, measured, ok)


def load_export(folder: Path, *, dtype: str | None = None) -> tuple[LoadedModel, str, bool]:
    """The export as transformers alone loads it: (model, format, trust_remote_code), in
    ``dtype`` (default: the dtype it was saved in)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fmt = export_format(folder)
    kind = get_format(fmt)
    if not kind.checkpoint:
        raise FrontierError(
            f"{folder} is a {fmt} export, not a transformers checkpoint: it was checked when it "
            "was written (compression.json, verification); verify re-measures checkpoints"
        )
    remote = kind.remote_code
    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder,
            trust_remote_code=remote,
            **({"dtype": torch_dtype(dtype)} if dtype is not None else {}),
        )
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FrontierError(f"transformers cannot load {folder}: {first}") from None
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = LoadedModel(model=model.eval(), tokenizer=tokenizer, source=str(folder), name=folder.name)
    return lm, fmt, remote


def verify_export(
    study: optuna.Study,
    folder: Path,
    *,
    device: str | None = None,
    progress: Progress | None = None,
) -> Verification:
    """Measure the export in ``folder`` with ``study``'s report protocol; compare figures.

    The unpruned model (the baselines) loads in the study's dtype on ``device`` (default:
    the study's), and the export is measured there in the same dtype, whatever dtype it
    was saved in (an fp32 export of a bf16 study holds the same weights)."""
    say = progress or (lambda _m: None)
    record = read_record(folder)
    prov = record.provenance
    if prov.study != study.study_name or prov.trial is None:
        raise FrontierError(
            f"{folder} was exported from study {prov.study!r} trial {prov.trial}, "
            f"not from study {study.study_name!r}"
        )
    # a repaired (or reconstructed) export is compared with the figures its repair
    # measured (same protocol)
    trained = record.repair or record.reconstruct
    final = trained.get("report") if trained else read_trial(study, prov.trial).final
    if trained and not isinstance(final, dict):
        raise FrontierError(f"{folder}: the repair record has no report figures to compare with")
    if final is None:
        raise FrontierError(
            f"trial {prov.trial} was never re-measured on held-out data, so the report has "
            "no figures to compare with; export a point of the report's table"
        )
    spec = st.stored_spec(study)
    say(f"measuring the unpruned {spec.model} baselines (cached after the study)")
    original = study_model(study, spec, device=device)
    on = original.device
    # the documents and looks the record used (frontier.search.final_looks)
    objectives = report_objectives(spec, original, replay=record_looks(final))
    del original
    say(f"loading {folder} with transformers")
    lm, fmt, remote = load_export(folder, dtype=spec.dtype)  # the study's protocol
    lm.model.to(on)
    say("measuring the export on held-out text" + (" and report documents" if spec.tasks else ""))
    ppl = objectives["ppl"].evaluate(lm)
    checks = [
        _check("ppl", final.get("ppl"), float(ppl.raw or math.nan), relative=True),
        _check("ppl_ratio", final.get("ppl_ratio"), float(ppl.value), relative=True),
    ]
    if "tasks" in objectives:
        tasks = objectives["tasks"].evaluate(lm)
        for name, d in tasks.details.items():
            got = (final.get("tasks") or {}).get(name, {}).get("acc")
            checks.append(_check(f"acc:{name}", got, float(d["acc"]), relative=False))
    return Verification(
        folder=folder,
        export_format=fmt,
        trust_remote_code=remote,
        study=study.study_name,
        trial=prov.trial,
        parameters=count_parameters(lm.model),
        checks=tuple(checks),
    )


verify = verify_export  # ``frontier verify``
