"""The time left of long work (a calibration pass, a ranking, a set-up), for its
progress lines: work done against work in all, with what an earlier, interrupted run
finished counted as done but not as this run's pace."""

from __future__ import annotations

import time


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``1.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Clock:
    """Work done against ``total``; :meth:`eta` estimates the time left from this run's
    own pace (work an earlier run finished, :meth:`skip`, does not speed it up)."""

    def __init__(self, total: float) -> None:
        self.total, self.done, self.skipped = total, 0.0, 0.0
        self.start = time.monotonic()

    def skip(self, amount: float) -> None:
        self.done += amount
        self.skipped += amount

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount

    def eta(self) -> str:
        """``, about 12 min left`` (empty before any work of this run, and at the end)."""
        ran = self.done - self.skipped
        if ran <= 0 or self.done >= self.total:
            return ""
        left = (time.monotonic() - self.start) / ran * (self.total - self.done)
        return f", about {duration(left)} left"
