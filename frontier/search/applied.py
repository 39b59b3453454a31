"""What the operator applied to a trial, as short digests stored with the trial.

An export rebuilds a trial's kept neurons (from the importance scores) and the refit's
ridge strengths (from the alpha cache) on the machine it runs on. A near-tie in the
scores, or an alpha chosen again on other statistics, would give a model other than the
one the study measured, silently; the record written when the trial was measured
(``frontier:applied``, :class:`~frontier.study.schema.AppliedRecord`) lets the export
refuse it instead. Trials recorded before this record existed are not checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from frontier.errors import FrontierError
from frontier.study.schema import AppliedRecord

if TYPE_CHECKING:
    import torch

    from frontier.pruning.operator import PruningOperator
    from frontier.pruning.selection import Selection

KEPT_HEX = 8  # per layer: a changed selection goes unnoticed with probability 2**-32
ALPHA_HEX = 16


def kept_digest(kept: torch.Tensor) -> str:
    """One layer's kept indices (ascending) as int64 little-endian bytes, hashed."""
    data = np.ascontiguousarray(kept.detach().cpu().numpy(), dtype="<i8").tobytes()
    return hashlib.sha256(data).hexdigest()[:KEPT_HEX]


def alpha_digest(alphas: Sequence[float]) -> str:
    """The per-layer ridge strengths, by their exact reprs, hashed."""
    text = ",".join(repr(float(a)) for a in alphas)
    return hashlib.sha256(text.encode()).hexdigest()[:ALPHA_HEX]


def applied_record(selection: Selection, alphas: Sequence[float] | None) -> AppliedRecord:
    """The record of ``selection`` applied with ridge strengths ``alphas`` (None: no refit)."""
    return AppliedRecord(
        kept=[kept_digest(k) for k in selection.kept],
        alpha=None if alphas is None else alpha_digest(alphas),
    )


def operator_alphas(operator: PruningOperator) -> list[float] | None:
    """The ridge strengths ``operator`` refits with (None: it does not refit)."""
    return operator.refitter.alphas if operator.refitter is not None else None


def check_applied(
    recorded: Any,
    selection: Selection,
    alphas: Sequence[float] | None,
    *,
    number: int,
    study_alphas: Sequence[float] | None = None,
) -> None:
    """Refuse, in one line, a rebuilt trial whose kept neurons or ridge strengths differ
    from those recorded when it was measured.

    ``recorded`` is trial ``number``'s ``frontier:applied`` value (anything but a mapping,
    as on trials from before the record: no check). ``study_alphas`` (the study
    protocol's) name the layers whose alpha moved, where they are the ones recorded.
    """
    if not isinstance(recorded, Mapping):
        return
    rebuilt = applied_record(selection, alphas)
    problems = []
    want = recorded.get("kept")
    if isinstance(want, list) and want != rebuilt["kept"]:
        if len(want) == len(rebuilt["kept"]):
            where = _layers(
                [i for i, (a, b) in enumerate(zip(want, rebuilt["kept"], strict=True)) if a != b]
            )
        else:
            where = f"{len(want)} layers recorded, {len(rebuilt['kept'])} rebuilt"
        problems.append(
            f"the kept neurons of {where} differ (the importance scores here are not the ones "
            "the study ranked by: another calibration cache, device or dtype)"
        )
    if "alpha" in recorded and recorded["alpha"] != rebuilt["alpha"]:
        moved = _moved_alphas(recorded["alpha"], alphas, study_alphas)
        problems.append(
            f"the refit's ridge strengths differ ({moved}the alpha cache beside the Gram "
            "matrices was chosen again, on other statistics or code)"
        )
    if problems:
        raise FrontierError(
            f"trial {number} rebuilds as another model than the one the study measured: "
            + "; ".join(problems)
            + "; export with the study's caches on its device, or run the study again here"
        )


def _layers(indices: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:8]) + (", ..." if len(indices) > 8 else "")
    return ("layer " if len(indices) == 1 else "layers ") + shown


def _moved_alphas(
    recorded: Any, alphas: Sequence[float] | None, study_alphas: Sequence[float] | None
) -> str:
    """Which layers' alphas moved, where the study's are known to be the recorded ones."""
    if (
        alphas is None
        or study_alphas is None
        or len(study_alphas) != len(alphas)
        or alpha_digest(study_alphas) != recorded
    ):
        return ""
    moved = [i for i, (a, b) in enumerate(zip(study_alphas, alphas, strict=True)) if a != b]
    shown = [f"layer {i} alpha {alphas[i]:g} ({study_alphas[i]:g} measured)" for i in moved]
    return ", ".join(shown[:4]) + (", ..." if len(shown) > 4 else "") + "; " if moved else ""
