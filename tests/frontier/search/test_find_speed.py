"""An objective-backed SLO metric in a study: ``speed`` (frontier.study.metrics)."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from frontier.search.find import find
from frontier.study.schema import ATTR_PROTOCOL
from frontier.testing import small_spec


@pytest.mark.slow  # a whole study measuring speed (26 s): make test-slow
def test_a_speed_floor_is_measured_checked_and_kept_to_the_end(
    tiny_folder: Path, tmp_path: Path
) -> None:
    """Every trial measures the prefill speed-up, stores it and is constrained by it; a
    floor no pruned model reaches leaves no chosen point, one every model reaches
    changes nothing else."""
    met = find(
        small_spec(tiny_folder, f"sqlite:///{tmp_path}/a.db", slos=("speed>=0.001",), trials=5)
    )
    trials = met.study.get_trials(states=(TrialState.COMPLETE,))
    assert trials and met.chosen is not None
    for t in trials:
        speed = t.user_attrs["frontier:search"]["extra"]["speed"]
        assert speed > 0.001
        assert t.constraints == {"speed>=0.001": (0.001 - speed) / 0.001}
    protocol = met.study.user_attrs[ATTR_PROTOCOL]
    assert protocol["slo_metrics"]["speed"]["objective"] == "speed"
    assert protocol["slos"] == ["speed>=0.001"]

    missed = find(
        small_spec(tiny_folder, f"sqlite:///{tmp_path}/b.db", slos=("speed>=1000",), trials=3)
    )
    assert missed.chosen is None
    done = missed.study.get_trials(states=(TrialState.COMPLETE,))
    assert done and all(t.constraints["speed>=1000"] > 0 for t in done)
