"""Repair: distil a pruned model's remaining MLP weights back towards the unpruned model.

Names load on first use, so that ``frontier --help`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from frontier.repair._config import RepairConfig
    from frontier.repair._data import RepairData, repair_data
    from frontier.repair._loss import HeldOut, LossParts, distill_loss
    from frontier.repair._progress import PlainReporter, Reporter, RichReporter, reporter_for
    from frontier.repair._study import RepairedExport, repair_trial
    from frontier.repair._trainer import RepairResult, repair

_WHERE = {
    "RepairConfig": "_config",
    "RepairData": "_data",
    "repair_data": "_data",
    "LossParts": "_loss",
    "distill_loss": "_loss",
    "PlainReporter": "_progress",
    "Reporter": "_progress",
    "RichReporter": "_progress",
    "reporter_for": "_progress",
    "HeldOut": "_loss",
    "RepairResult": "_trainer",
    "repair": "_trainer",
    "RepairedExport": "_study",
    "repair_trial": "_study",
}

__all__ = [
    "HeldOut",
    "LossParts",
    "PlainReporter",
    "RepairConfig",
    "RepairData",
    "RepairResult",
    "RepairedExport",
    "Reporter",
    "RichReporter",
    "distill_loss",
    "repair",
    "repair_data",
    "repair_trial",
    "reporter_for",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'frontier.repair' has no attribute {name!r}")
    return getattr(importlib.import_module(f"frontier.repair.{_WHERE[name]}"), name)
