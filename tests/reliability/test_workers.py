"""Two ``frontier worker`` processes on one study: every trial arrives, once.

Run on a real PostgreSQL server started here and on Optuna's journal file. Where the
server cannot run here the PostgreSQL case is skipped with the reason, or fails when
``FRONTIER_REQUIRE_POSTGRES=1`` (CI sets it, so a broken install cannot pass unseen).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from optuna.trial import TrialState

from frontier.search.storage import finished

FIRST = 2  # trials the creating `find` runs
TOTAL = 10  # the workers' --trials: the study's total
WORKERS = 2


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return Path(dirs[-1]) if dirs else None


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail where PostgreSQL is required (CI)."""
    if os.environ.get("FRONTIER_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"FRONTIER_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on 127.0.0.1 (trust auth), stopped afterwards."""
    try:
        import psycopg
    except ImportError:
        _unavailable("needs psycopg (pip install 'psycopg[binary]')")
    bindir = _pg_bin()
    if bindir is None:
        _unavailable("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="frontier-pg-"))  # not under pytest's 0700 tmp
    if os.geteuid() == 0:  # the server refuses to run as root
        user = "postgres"
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            _unavailable("running as root and there is no 'postgres' user to run the server")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        prefix = [shutil.which("runuser") or "runuser", "-u", user, "--"]
    data, port = root / "data", _free_port()
    server: subprocess.Popen[bytes] | None = None
    log = (root / "server.log").open("wb")
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "frontier",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        server = subprocess.Popen(
            [*prefix, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
             "-k", str(root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={port} user=frontier dbname=postgres",
                    autocommit=True,
                ) as conn:
                    conn.execute("CREATE DATABASE frontier")
                break
            except psycopg.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        "PostgreSQL did not start:\n" + (root / "server.log").read_text()[-2000:]
                    )
                time.sleep(0.2)
        yield f"postgresql://frontier@127.0.0.1:{port}/frontier"
    finally:
        if server is not None:
            _stop(server, data / "postmaster.pid")
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _stop(server: subprocess.Popen[bytes], pidfile: Path) -> None:
    """Fast shutdown, signalled to the postmaster itself (runuser does not pass signals on)."""
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises once it is gone
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture(params=["postgresql", "journal"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "journal":
        return f"journal:{tmp_path}/study.journal"
    return str(request.getfixturevalue("postgres_url"))


def test_two_workers_share_one_study(
    storage_url: str, cli: Any, tiny_folder: Path, tmp_path: Path
) -> None:
    # `find` creates the study (settings, baseline) and runs a few trials (`--trials` must
    # be positive: there is no "create only" call). No warm starts, so that the workers'
    # own sampling is exercised from the first trial.
    first_log = tmp_path / "find.trials"
    args = [*cli.find_args(tiny_folder, storage_url, FIRST, study="w"), "--no-warm-start"]
    created = cli.start(args, trial_log=first_log)
    assert created.wait(240) == 0, created.stderr[-3000:]
    logs = [tmp_path / f"worker{i}.trials" for i in range(WORKERS)]
    barrier = {
        "FRONTIER_TEST_BARRIER": str(tmp_path / "barrier"),
        "FRONTIER_TEST_BARRIER_N": str(WORKERS),
    }
    workers = [
        cli.start(
            ["worker", "w", "--storage", storage_url, "--trials", str(TOTAL)],
            trial_log=log,
            env={**cli.env(), **barrier},
        )
        for log in logs
    ]
    for w in workers:
        assert w.wait(300) == 0, w.stderr[-3000:]
        assert "Traceback" not in w.stderr

    study = cli.load(storage_url, "w")
    trials = study.get_trials()
    ran = [[int(n) for n in log.read_text().split()] for log in logs]
    by_find = [int(n) for n in first_log.read_text().split()]
    assert all(ran), f"each worker ran trials: {ran}"
    # nothing duplicated: no trial was started by two processes, ids and numbers distinct
    every = by_find + [n for r in ran for n in r]
    assert len(every) == len(set(every))
    assert len({t._trial_id for t in trials}) == len({t.number for t in trials}) == len(trials)
    # nothing lost: every started trial finished, with its figures stored
    done = {t.number for t in trials if finished(t)}
    assert done == set(every)
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    for t in trials:
        if finished(t):
            assert {"frontier:plan", "frontier:search", "frontier:timing"} <= set(t.user_attrs)
            assert t.user_attrs["frontier:search"]["ppl_ratio"] is not None
            assert t.constraints, f"trial {t.number} has its SLO constraint values"
    # the workers stop at the study's total; each may finish the trial it had started
    # when the other reached it, so at most WORKERS - 1 over
    assert TOTAL <= len(done) <= TOTAL + WORKERS - 1
    # each worker says how many trials it ran itself
    for w, r in zip(workers, ran, strict=True):
        assert f"ran {len(r)} trial(s)" in w.stdout
    # workers with the same seed must not propose the same plans
    sampled = [t.params for t in trials]
    dupes = [p for i, p in enumerate(sampled) if p in sampled[:i]]
    assert not dupes, f"plans proposed twice: {dupes}"
