"""One study on several GPUs of one machine: a ``frontier worker`` process per extra device.

``frontier find --devices cuda:0,cuda:1`` runs the study's set-up, its uniform bisection
and its own trials on the first device, and starts ``frontier worker STUDY --device D``
for every other one once the study is set up, over the study's storage (the default
SQLite file works for a few processes on one machine; PostgreSQL or ``journal:PATH``
scale further). Every worker stops at the study's total; ``find`` waits for them before
the final re-measurement. Each worker writes its progress to a log file of its own.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from frontier.errors import FrontierError
from frontier.models.device import check_device, device_kind
from frontier.study.spec import StudySpec

LOG_DIR = Path("studies") / "logs"


def parse_devices(text: str) -> tuple[str, ...]:
    """``cuda:0,cuda:1`` -> ``("cuda:0", "cuda:1")``: distinct devices of one kind."""
    devices = tuple(d.strip() for d in text.split(",") if d.strip())
    if not devices:
        raise FrontierError("--devices needs at least one device, e.g. cuda:0,cuda:1")
    for d in devices:
        if check_device(d) == "auto":
            raise FrontierError("--devices names devices (cuda:0,cuda:1), not auto")
    if len({device_kind(d) for d in devices}) > 1:
        raise FrontierError(
            f"--devices {text}: one study measures on one kind of device (its figures "
            "depend on it); use GPUs only or the CPU only"
        )
    if len(set(devices)) < len(devices):
        raise FrontierError(f"--devices {text} names a device twice")
    return devices


@dataclass
class Worker:
    device: str
    process: subprocess.Popen[bytes]
    log: Path


def worker_command(spec: StudySpec, device: str) -> list[str]:
    """The ``frontier worker`` command line of ``spec``'s study on ``device``."""
    cmd = [
        sys.executable,
        "-m",
        "frontier.cli",
        "worker",
        spec.study_name,
        "--storage",
        spec.storage_url,
        "--trials",
        str(spec.trials),
        "--device",
        device,
        "--early-stop" if spec.early_stop else "--no-early-stop",  # as find runs, not as stored
    ]
    if spec.timeout is not None:
        cmd += ["--timeout", str(spec.timeout)]
    if spec.threads is not None:
        cmd += ["--threads", str(spec.threads)]
    if spec.memory is not None:
        cmd += ["--memory", str(spec.memory)]
    return cmd


def start_workers(
    spec: StudySpec, devices: tuple[str, ...], *, log_dir: Path = LOG_DIR
) -> list[Worker]:
    """Start a worker of ``spec``'s (set-up) study on each of ``devices``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for device in devices:
        log = log_dir / f"{spec.study_name}.worker-{re.sub(r'[^A-Za-z0-9]+', '', device)}.log"
        with log.open("ab") as sink:
            proc = subprocess.Popen(
                worker_command(spec, device),
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        out.append(Worker(device, proc, log))
    return out


def wait_workers(workers: list[Worker]) -> list[str]:
    """Wait for every worker; a line for each that failed (naming its log)."""
    failed = []
    for w in workers:
        code = w.process.wait()
        if code != 0:
            failed.append(f"the worker on {w.device} exited with status {code}; see {w.log}")
    return failed


def stop_workers(workers: list[Worker]) -> None:
    """Ask running workers to stop as Ctrl-C would (their trial in flight runs again on
    the next run), then wait for them."""
    for w in workers:
        if w.process.poll() is None:
            w.process.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.process.wait(60)
        except subprocess.TimeoutExpired:
            w.process.kill()
            w.process.wait()
