"""Helpers for tests that run ``frontier`` as real processes on a tiny random model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from frontier.testing import SMALL_STUDY_FLAGS, tiny_model, tiny_tokenizer

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

T = TypeVar("T")


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random llama saved as a local Hugging Face folder (shared by the session)."""
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    tiny_model("llama").save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FRONTIER_HOME for this test (in-process and for the processes it starts).

    The working directory is the test's own too: ``find`` writes its report under
    ``studies/results/`` of the working directory, which must not be the repository.
    """
    path = tmp_path / "home"
    monkeypatch.setenv("FRONTIER_HOME", str(path))
    monkeypatch.setenv("FRONTIER_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    return path


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FRONTIER_HOME=str(home),
        FRONTIER_THREADS="1",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.update(extra)
    return env


def find_args(model: Path, storage: str, trials: int, *, study: str = "s") -> list[str]:
    return [
        "find",
        "--model",
        str(model),
        "--slo",
        "ppl<1.5",
        "--trials",
        str(trials),
        *SMALL_STUDY_FLAGS,
        "--storage",
        storage,
        "--study",
        study,
    ]


def wait_for(what: str, check: Callable[[], T | None], timeout: float, proc: Proc) -> T:
    """Poll ``check`` until it returns a value; fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()
        except Exception:  # the study may not exist yet, or SQLite is busy
            got = None
        if got is not None:
            return got
        if proc.popen.poll() is not None:
            pytest.fail(
                f"process exited ({proc.popen.returncode}) before {what}:\n{proc.stderr[-3000:]}"
            )
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}:\n{proc.stderr[-3000:]}")


def load(url: str, study: str = "s") -> optuna.Study:
    from frontier.search.storage import open_storage

    return optuna.load_study(study_name=study, storage=open_storage(url))


def pareto_numbers(trials: list[FrozenTrial], directions: list[str]) -> set[int]:
    """The feasible Pareto set recomputed from scratch (what ``study.best_trials`` means)."""
    sign = [1.0 if d == "minimize" else -1.0 for d in directions]
    cands = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and all(c <= 0 for c in t.constraints.values())
    ]

    def key(t: FrozenTrial) -> list[float]:
        assert t.values is not None
        return [s * v for s, v in zip(sign, t.values, strict=True)]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    return {t.number for t in cands if not any(dominates(key(o), key(t)) for o in cands)}


@dataclass
class Proc:
    """A ``frontier`` process whose output goes to files (no pipe can fill up and block)."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # every thread's stack (faulthandler in the wrapper), then kill: a hang explains itself
            self.popen.send_signal(signal.SIGUSR1)
            time.sleep(2)
            self.kill()
            pytest.fail(f"process did not finish in {timeout} s; stderr:\n{self.stderr[-6000:]}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=30)


class Cli:
    """Starts ``frontier`` processes for one test (FRONTIER_HOME, logs and clean-up bound)."""

    def __init__(self, home: Path, logs: Path) -> None:
        self.home = home
        self.logs = logs
        self.started: list[Proc] = []

    # helpers for test modules (which cannot import this conftest)
    find_args = staticmethod(find_args)
    wait_for = staticmethod(wait_for)
    load = staticmethod(load)
    pareto_numbers = staticmethod(pareto_numbers)

    def env(self, **extra: str) -> dict[str, str]:
        return cli_env(self.home, **extra)

    def start(
        self,
        args: list[str],
        *,
        stall_trial: int | None = None,
        trial_log: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Proc:
        """``python -m frontier.cli ARGS``, or with instrumentation (see _cli_wrapper.py)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        n = len(self.started)
        out, err = self.logs / f"{n}.out", self.logs / f"{n}.err"
        env = dict(env or self.env())
        cmd = [sys.executable, "-m", "frontier.cli", *args]
        if stall_trial is not None or trial_log is not None:
            cmd = [sys.executable, str(HERE / "_cli_wrapper.py"), *args]
        if stall_trial is not None:
            env["FRONTIER_TEST_STALL_TRIAL"] = str(stall_trial)
        if trial_log is not None:
            env["FRONTIER_TEST_TRIAL_LOG"] = str(trial_log)
        with out.open("wb") as o, err.open("wb") as e:
            popen = subprocess.Popen(cmd, cwd=self.home.parent, env=env, stdout=o, stderr=e)
        proc = Proc(popen, out, err)
        self.started.append(proc)
        return proc

    def run(self, args: list[str], *, timeout: float = 240, **kw: str) -> Proc:
        proc = self.start(args, env=self.env(**kw))
        proc.wait(timeout)
        return proc

    def close(self) -> None:
        for p in self.started:
            p.kill()


@pytest.fixture
def cli(home: Path, tmp_path: Path) -> Iterator[Cli]:
    c = Cli(home, tmp_path / "logs")
    try:
        yield c
    finally:
        c.close()
