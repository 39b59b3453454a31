"""Opening studies in Optuna storages, checking their fingerprint, counting finished trials.

Studies are plain Optuna studies, so ``optuna-dashboard`` and Optuna's own API read them.
URLs: any SQLAlchemy URL (``sqlite:///studies/x.db``, ``postgresql://...``) or
``journal:PATH`` for Optuna's journal file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from frontier.errors import FrontierError
from frontier.search.spec import StudySpec

ATTR_SPEC = "frontier:spec"
ATTR_FINGERPRINT = "frontier:fingerprint"
ATTR_MODEL_FINGERPRINT = "frontier:model_fingerprint"
ATTR_BASELINE = "frontier:baseline"
ATTR_PROTOCOL = "frontier:protocol"
ATTR_OBJECTIVES = "frontier:objectives"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage; RDB storages get heartbeats so a killed worker's trial is retried."""
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=15,
            grace_period=45,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
            engine_kwargs={"pool_pre_ping": True},
        )
    except Exception as exc:  # SQLAlchemy raises many kinds for a bad or unreachable URL
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FrontierError(f"cannot open storage {_redact(url)}: {first}") from None


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def load_existing(name: str, url: str) -> optuna.Study:
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise FrontierError(
            f"no study {name!r} in {_redact(url)}"
            + (f"; studies there: {', '.join(names)}" if names else "")
        ) from None


def stored_spec(study: optuna.Study) -> StudySpec:
    data = study.user_attrs.get(ATTR_SPEC)
    if not isinstance(data, dict):
        raise FrontierError(f"study {study.study_name!r} was not made by frontier (no spec)")
    return StudySpec.from_dict(data, where=f"study {study.study_name}")


def check_fingerprint(study: optuna.Study, spec: StudySpec, fingerprint: str) -> None:
    """Refuse to continue a study under other measured settings, naming what differs."""
    old = study.user_attrs.get(ATTR_FINGERPRINT)
    if old is None or old == fingerprint:
        return
    before = study.user_attrs.get(ATTR_SPEC, {})
    now = spec.measured_settings()
    diffs = [
        f"{k}: {before.get(k)!r} -> {now.get(k)!r}"
        for k in sorted(now)
        if k in before and before.get(k) != now.get(k)
    ]
    what = "; ".join(diffs) if diffs else "the model's weights differ"
    raise FrontierError(
        f"study {study.study_name!r} was made with other settings ({what}); "
        "rerun with the same settings to resume, or pass --study NEW_NAME"
    )


def initialise(study: optuna.Study, spec: StudySpec, fingerprint: str, model_fp: str) -> None:
    if ATTR_FINGERPRINT not in study.user_attrs:
        study.set_user_attr(ATTR_SPEC, json.loads(json.dumps(spec.to_dict())))
        study.set_user_attr(ATTR_FINGERPRINT, fingerprint)
        study.set_user_attr(ATTR_MODEL_FINGERPRINT, model_fp)


def finished(trial: FrozenTrial) -> bool:
    """Trials that used up budget: measured (complete or screened) or failed by evaluation.

    A trial that failed because its worker was killed is not counted: it is retried.
    """
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "frontier:failed" in trial.user_attrs


def n_finished(study: optuna.Study) -> int:
    return sum(finished(t) for t in study.get_trials(deepcopy=False))


class StopAfter:
    """Optuna callback: stop once ``n`` trials of the study (all workers) have finished."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, study: optuna.Study, _trial: FrozenTrial) -> None:
        if n_finished(study) >= self.n:
            study.stop()


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if name == "tpe":
        return optuna.samplers.TPESampler(multivariate=True, seed=seed, n_startup_trials=10)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=10)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise FrontierError(f"unknown sampler {name!r}")


def user_attr(trial: FrozenTrial, key: str, default: Any = None) -> Any:
    return trial.user_attrs.get(key, default)
