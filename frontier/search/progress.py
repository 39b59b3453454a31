"""Progress of a running study as plain lines, for logs: ``nohup``, CI, a pipe.

A terminal gets rich's live bar (:class:`frontier.search.display.LiveProgress`); where
stdout is not a terminal, :class:`PlainProgress` writes one line per finished trial, at
most one every ``interval`` seconds (the first and the last always), and a line every
``heartbeat`` seconds while nothing finishes (a long trial, the final re-measurements),
so a log never goes quiet for long. A study whose search stopped early
(:mod:`frontier.search.early_stop`) gets its line at once, marked so, and no ETA.

The library's own progress messages (``held-out: trial 19, candidate 2 of up to 12``,
a task's look) reach the tracker through :meth:`PlainProgress.note`, so a
``still working`` line says what is being worked on, the final stage's re-measurements
included, even in a log that holds stdout alone.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

import optuna
from optuna.trial import FrozenTrial

from frontier.search import storage as st
from frontier.search.early_stop import stopped_early
from frontier.study.schema import ATTR_SEARCH


def best_feasible_removed(study: optuna.Study) -> float | None:
    """The largest fraction of MLP parameters removed by a feasible Pareto trial."""
    best = None
    for t in study.best_trials:  # with constraints: the feasible Pareto set only
        kept = t.user_attrs.get(ATTR_SEARCH, {}).get("mlp_kept")
        if kept is not None and (best is None or 1 - kept > best):
            best = 1 - kept
    return best


def describe_best(study: optuna.Study) -> str:
    best = best_feasible_removed(study)
    return "best feasible: " + ("none yet" if best is None else f"{100 * best:.1f}% MLP removed")


def clock_time(seconds: float) -> str:
    """``1:02:03`` or ``2:03``."""
    s = max(round(seconds), 0)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


class PlainProgress:
    """Optuna callback: ``trial n/N done, best feasible ..., s/trial, ETA ...`` lines.

    ``total`` is the study's total (``None``: read from the stored spec on first use).
    ``heartbeat`` seconds without a line print a ``still working`` line (0 turns that
    off): while trials are left, or once :meth:`note` has named what runs since the last
    trial (the final stage's re-measurements, after the search).
    """

    def __init__(
        self,
        total: int | None,
        *,
        stream: TextIO | None = None,
        interval: float = 10.0,
        heartbeat: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.limit = total
        self.stream = stream
        self.interval = interval
        self.heartbeat = heartbeat
        self.clock = clock
        self.ran = 0
        self.done = 0
        self.started: float | None = None
        self.last_line = 0.0
        self.trial_started = 0.0
        self.activity: str | None = None  # the last noted message, since the last trial
        self.activity_since = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def start(self, study: optuna.Study) -> None:
        if self.total is None:
            self.total = st.stored_spec(study).trials
        self.limit = self.total  # --trials; ``total`` drops to what ran if the search stops
        self.done = st.n_finished(study)
        if self.done < self.total and stopped_early(study) is not None:
            self.total = self.done  # a resumed study whose search is over: no trials left
        self.started = self.last_line = self.trial_started = self.clock()
        self._write(f"trials: {self.done}/{self.total} finished before this run")
        if self.heartbeat > 0:
            self._beat = threading.Thread(target=self._heartbeat, daemon=True)
            self._beat.start()

    def stop(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=1.0)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.started is None:
            self.start(study)
        assert self.started is not None and self.total is not None and self.limit is not None
        now = self.clock()
        self.ran += 1
        self.done = st.n_finished(study)
        self.trial_started = now
        self.activity = None
        total = self.limit
        stopped = self.done < total and stopped_early(study) is not None
        # once the search is over (the trials after it: a resumed study's families, the
        # fallback), no ETA and no still-working lines
        self.total = self.done if stopped else total
        last = self.done >= self.total
        if not (self.ran == 1 or last or now - self.last_line >= self.interval):
            return
        per = (now - self.started) / self.ran
        eta = max(self.total - self.done, 0) * per
        self._write(
            f"trial {self.done}/{total} done ({trial.state.name.lower()}); "
            f"{describe_best(study)}; {per:.1f} s/trial; ETA {clock_time(eta)}"
            + ("; the search stopped early" if stopped else "")
        )

    def note(self, message: str) -> None:
        """What the study is doing now (a progress message of the library): the next
        ``still working`` line names it."""
        with self._lock:
            self.activity, self.activity_since = message, self.clock()

    def heartbeat_line(self, now: float) -> str | None:
        """The ``still working`` line due at ``now``, if one is."""
        assert self.total is not None
        if now - self.last_line < self.heartbeat:
            return None
        activity, since = self.activity, self.activity_since
        if activity is not None:
            return (
                f"still working: {activity} (for {clock_time(now - since)}; "
                f"{self.done}/{self.total} trials done)"
            )
        if self.done < self.total:
            return (
                f"still working: {self.done}/{self.total} trials done, the last "
                f"{clock_time(now - self.trial_started)} ago"
            )
        return None

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(self.heartbeat, self.interval) / 2):
            line = self.heartbeat_line(self.clock())
            if line is not None:
                self._write(line)

    def _write(self, line: str) -> None:
        with self._lock:
            stream = self.stream or sys.stdout  # the current one (tests replace it)
            print(line, file=stream, flush=True)
            self.last_line = self.clock()
