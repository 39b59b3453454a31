"""Per-neuron importance scores from calibration data, cached on disk.

Use :func:`compute_scores`; criteria are registered in ``CRITERIA`` (obs-greedy, the
default, obs, energy, activation, fluctuation, magnitude, random).
"""

from frontier.importance._criteria import CRITERIA, Criterion, get_criterion, register_criterion
from frontier.importance._scores import Scores, calibrate, compute_scores
from frontier.importance._stats import ActivationStats, collect_stats

__all__ = [
    "CRITERIA",
    "ActivationStats",
    "Criterion",
    "Scores",
    "calibrate",
    "collect_stats",
    "compute_scores",
    "get_criterion",
    "register_criterion",
]
