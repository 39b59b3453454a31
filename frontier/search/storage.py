"""Opening studies in Optuna storages, checking their fingerprint, counting finished trials.

Studies are plain Optuna studies, so ``optuna-dashboard`` and Optuna's own API read them.
URLs: any SQLAlchemy URL (``sqlite:///studies/x.db``, ``postgresql://...``) or
``journal:PATH`` for Optuna's journal file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from frontier.errors import FrontierError
from frontier.study.spec import StudySpec, stored_spec

if TYPE_CHECKING:
    from frontier.search.space import Space
from frontier.study.schema import (
    ATTR_FAILED,
    ATTR_FINGERPRINT,
    ATTR_MODEL_FINGERPRINT,
    ATTR_SPEC,
    IDENTITY_ATTRS,
)

# A running trial writes a heartbeat every HEARTBEAT_INTERVAL seconds; one whose heartbeat
# is older than GRACE_PERIODS intervals belongs to a worker that died (SIGKILL, OOM, power):
# the next trial started on the study (by any worker, or a resumed run) marks it FAIL and
# queues its plan again once. Three missed beats rather than one, so a worker slowed by a
# busy machine or a locked SQLite file is not declared dead. A stale trial is never counted
# as finished (see :func:`finished`), so a kill costs one re-run, never a double count.
HEARTBEAT_INTERVAL = 10
GRACE_PERIODS = 3
HEARTBEAT_ENV = "FRONTIER_HEARTBEAT_INTERVAL"


def heartbeat() -> tuple[int, int]:
    """(interval, grace period) in seconds; ``$FRONTIER_HEARTBEAT_INTERVAL`` overrides."""
    raw = os.environ.get(HEARTBEAT_ENV, "").strip()
    try:
        interval = int(raw) if raw else HEARTBEAT_INTERVAL
    except ValueError:
        raise FrontierError(
            f"{HEARTBEAT_ENV} must be a whole number of seconds, got {raw!r}"
        ) from None
    if interval < 1:
        raise FrontierError(f"{HEARTBEAT_ENV} must be at least 1, got {interval}")
    return interval, GRACE_PERIODS * interval


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage; RDB storages get heartbeats so a killed worker's trial is retried.

    The journal file has no heartbeats: a trial whose worker was killed stays RUNNING
    there (never counted, so nothing is double-counted; its plan is simply not retried).
    """
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    interval, grace = heartbeat()
    try:
        storage = optuna.storages.RDBStorage(
            url,
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=RetryStale(),
            engine_kwargs={"pool_pre_ping": True},
        )
    except ImportError:  # Optuna's message does not say which driver
        scheme = url.split(":", 1)[0]
        driver = _DRIVERS.get(scheme) or _DRIVERS.get(scheme.split("+")[0], "its driver")
        raise FrontierError(
            f"cannot open storage {_redact(url)}: install {driver} (pip install '{driver}')"
        ) from None
    except Exception as exc:  # SQLAlchemy raises many kinds for a bad or unreachable URL
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FrontierError(f"cannot open storage {_redact(url)}: {first}") from None
    return storage


_DRIVERS = {
    "postgresql": "psycopg[binary]",  # SQLAlchemy 2.1's default PostgreSQL driver
    "postgresql+psycopg2": "psycopg2-binary",
    "mysql": "mysqlclient",
}


def requeue(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Queue ``trial``'s plan again as a new WAITING trial, unless it is itself a retry.

    Like Optuna's ``RetryHeartbeatStaleTrialCallback(max_retry=1)``, but the copy keeps
    only what the trial *is* (its parameters, its warm-start plan), not results a dead or
    interrupted run had half written, so a retried plan never shows another run's notes.
    A plan that was cut short twice (e.g. it ran out of memory) is not tried a third time.
    """
    if trial.system_attrs.get("retry_history"):
        return False
    system: dict[str, Any] = {"failed_trial": trial.number, "retry_history": [trial.number]}
    if "fixed_params" in trial.system_attrs:  # an enqueued (warm-start) trial
        system["fixed_params"] = trial.system_attrs["fixed_params"]
    user = {k: trial.user_attrs[k] for k in IDENTITY_ATTRS if k in trial.user_attrs}
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=user,
            system_attrs=system,
        )
    )
    return True


class RetryStale:
    """Heartbeat callback: a trial whose worker died (its heartbeat went stale) is retried once."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        requeue(study, trial)


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """Queue again, once, every trial that an interrupt cut short; returns their numbers.

    Ctrl-C or SIGTERM marks the running trial FAIL (Optuna's own handling), which is not
    counted as finished; without a retry a warm-start plan cut short would be lost for
    good. Call it when a run starts (``find`` or ``worker``). Trials failed by evaluation
    (NaN), trials already retried, and retries themselves are left alone.
    """
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get("failed_trial") for t in trials}
    out = []
    for t in trials:
        if t.state != TrialState.FAIL or finished(t) or t.number in retried:
            continue
        if requeue(study, t):
            out.append(t.number)
    return out


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def load_study(name: str, storage: str | None = None) -> optuna.Study:
    """Open the existing study ``name`` in ``storage`` (default: its SQLite file under
    ``studies/``, where ``frontier find`` puts it)."""
    return load_existing(name, storage or StudySpec(study=name).storage_url)


def load_existing(name: str, url: str) -> optuna.Study:
    """Open a study that must already exist; a missing SQLite file is not created."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise FrontierError(f"no study {name!r}: {path} does not exist")
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise FrontierError(
            f"no study {name!r} in {_redact(url)}"
            + (f"; studies there: {', '.join(names)}" if names else "")
        ) from None


def check_fingerprint(study: optuna.Study, spec: StudySpec, fingerprint: str) -> None:
    """Refuse to continue a study under other measured settings, naming what differs."""
    old = study.user_attrs.get(ATTR_FINGERPRINT)
    if old is None or old == fingerprint:
        return
    diffs = settings_changed(study, spec)
    what = "; ".join(diffs) if diffs else "the model's weights differ"
    raise FrontierError(
        f"study {study.study_name!r} was made with other settings ({what}); "
        "rerun with the same settings to resume, or pass --study NEW_NAME"
    )


def settings_changed(study: optuna.Study, spec: StudySpec) -> list[str]:
    """``"key: old -> new"`` for every measured setting of resolved ``spec`` that differs
    from the study's stored one (its device by kind: cuda:1 measures what cuda:0 does)."""
    old = stored_spec(study)
    before, now = old.measured_settings(), spec.measured_settings()
    keys = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    # shown in full: a setting at its legacy value is left out of the measured settings
    shown = [{**old.to_dict(), **before}, {**spec.to_dict(), **now}]
    return [f"{k}: {shown[0].get(k)!r} -> {shown[1].get(k)!r}" for k in keys]


def initialise(study: optuna.Study, spec: StudySpec, fingerprint: str, model_fp: str) -> None:
    if ATTR_FINGERPRINT not in study.user_attrs:
        study.set_user_attr(ATTR_SPEC, json.loads(json.dumps(spec.to_dict())))
        study.set_user_attr(ATTR_MODEL_FINGERPRINT, model_fp)
        study.set_user_attr(ATTR_FINGERPRINT, fingerprint)  # last: marks set-up complete


def finished(trial: FrozenTrial) -> bool:
    """Trials that used up budget: measured (complete or screened) or failed by evaluation.

    A trial that failed because its worker was killed is not counted: it is retried.
    """
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and ATTR_FAILED in trial.user_attrs


def n_finished(study: optuna.Study) -> int:
    return sum(finished(t) for t in study.get_trials(deepcopy=False))


class StopAfter:
    """Optuna callback: stop once ``n`` trials of the study (all workers) have finished."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, study: optuna.Study, _trial: FrozenTrial) -> None:
        if n_finished(study) >= self.n:
            study.stop()


def run_seed(seed: int, n_existing: int, *, worker: bool = False) -> int:
    """The sampler seed for one run on a study that already holds ``n_existing`` trials.

    A sampler restarted with the same seed proposes the same plans again (its random
    start-up draws do not depend on the study's history), so a resumed run, or a second
    worker, would spend trials re-measuring plans already measured. A new study uses
    ``seed`` itself (a single-process study is reproducible); a resumed one a seed derived
    from ``seed`` and its size (still reproducible); a worker joining others, fresh
    entropy (workers running side by side are not reproducible anyway).
    """
    if worker:
        import secrets

        return secrets.randbits(31)
    if n_existing == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}:{n_existing}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") >> 1


def make_sampler(name: str, seed: int, space: Space | None = None) -> optuna.samplers.BaseSampler:
    """The named sampler; ``boundary`` (level switches near the SLO boundary, see
    :mod:`frontier.search.boundary`) wraps TPE and needs the study's search ``space``."""
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if name == "boundary":
        from frontier.search.boundary import BoundarySampler

        if space is None:
            raise FrontierError("the boundary sampler needs the search space")
        return BoundarySampler(make_sampler("tpe", seed), space, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(multivariate=True, seed=seed, n_startup_trials=10)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=10)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise FrontierError(f"unknown sampler {name!r}")
