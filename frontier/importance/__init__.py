"""Per-neuron importance scores from calibration data, cached on disk.

Use :func:`compute_scores`; criteria are registered in ``CRITERIA`` (obs-greedy, the
default, obs, energy, activation, fluctuation, magnitude, random).
"""

from frontier.importance._criteria import CRITERIA, Criterion, get_criterion, register_criterion
from frontier.importance._gram import GramStats
from frontier.importance._scores import Scores, calibrate, compute_scores, gram_cache_path
from frontier.importance._stats import ActivationStats, collect_stats

__all__ = [
    "CRITERIA",
    "ActivationStats",
    "Criterion",
    "GramStats",
    "Scores",
    "calibrate",
    "collect_stats",
    "compute_scores",
    "get_criterion",
    "gram_cache_path",
    "register_criterion",
]
