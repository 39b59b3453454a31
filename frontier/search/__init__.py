"""The search: an Optuna study over per-layer keep ratios, with SLOs as constraints."""

from frontier.study.spec import StudySpec

__all__ = ["StudySpec"]
