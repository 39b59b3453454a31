"""Termination signals stop a run the way Ctrl-C does.

Python turns SIGINT into ``KeyboardInterrupt``, which Optuna catches around the objective:
the running trial is marked FAIL (not counted, so a resumed study runs it again) and the
storage is left consistent. SIGTERM (``kill``, a batch scheduler's time limit, ``docker
stop``) and SIGHUP (a closed terminal) would instead end the process on the spot, leaving
the running trial RUNNING until its heartbeat goes stale. :func:`install` makes them raise
:class:`Interrupted`, a ``KeyboardInterrupt``, so every stop that can be caught is clean.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """A termination signal arrived; ``exit_status`` is the shell's ``128 + signal``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def install() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread.

    Only signals still at their default action are taken over (a handler set by an
    embedding application is kept), and nothing happens outside the main thread,
    where Python cannot install handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _raise)


def exit_status(exc: BaseException) -> int:
    """The exit status for an interrupt: 130 for Ctrl-C, ``128 + n`` for signal ``n``."""
    return exc.exit_status if isinstance(exc, Interrupted) else 128 + signal.SIGINT
