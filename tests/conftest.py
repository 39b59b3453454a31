from __future__ import annotations

import os
from pathlib import Path

import pytest

from frontier import settings

# Never reach for a hub during tests; real models come from the FRONTIER_HOME cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


try:  # no time limits: tests run on shared 2-core machines, and timed tests flake there
    from hypothesis import HealthCheck
    from hypothesis import settings as _hypothesis

    for _name in ("default-untimed", "slow-machine"):  # slow-machine: tools/mutation.py
        _hypothesis.register_profile(
            _name, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        )
    _hypothesis.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default-untimed"))
except ImportError:  # hypothesis is a dev dependency
    pass

# The user's cache, read once before any test changes FRONTIER_HOME.
SHARED_HOME = settings.home()
# What tests may share with the user's cache: provisioned models, benchmark data and the
# llama.cpp build (slow to make, keyed by content or version). Baselines and importance
# statistics are never shared, so a changed metric is always measured afresh.
SHARED_DIRS = ("models", "data", "downloads", "llama.cpp")


@pytest.fixture(autouse=True)
def _own_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own FRONTIER_HOME; the real models and data stay reachable."""
    home = tmp_path_factory.mktemp("frontier-home")
    for name in SHARED_DIRS:
        shared = SHARED_HOME / name
        shared.mkdir(parents=True, exist_ok=True)
        (home / name).symlink_to(shared, target_is_directory=True)
    monkeypatch.setenv("FRONTIER_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _seed() -> None:
    import torch

    torch.manual_seed(0)


@pytest.fixture(scope="session")
def smollm2():  # type: ignore[no-untyped-def]
    """The real SmolLM2-135M-Instruct (provisioned from PyPI into FRONTIER_HOME once)."""
    from frontier.models import load_model

    return load_model("smollm2-135m")
