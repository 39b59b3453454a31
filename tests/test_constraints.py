"""The install is pinned: every package the project depends on, directly or not, has one
version in constraints.txt, which `make setup` installs with."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_make_installs_with_the_constraints() -> None:
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()


def test_every_dependency_is_pinned_to_one_version() -> None:
    pins = _pins()
    requires = metadata.requires("frontier") or []
    for req in requires:
        name = re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0]
        key = re.sub(r"[-_.]+", "-", name).lower()
        if "extra ==" in req and "dev" not in req and "postgres" not in req:
            continue
        assert key in pins, f"{name} is not pinned in constraints.txt"
    for lib in ("torch", "transformers", "optuna", "lm-eval"):
        assert pins[lib].startswith(metadata.version(lib).split("+")[0]), lib
