"""``frontier.cli.main`` with test instrumentation around each trial's objective.

- ``$FRONTIER_TEST_STALL_TRIAL=N``: trial N is measured as usual, marks itself with the
  user attribute ``test:stalled`` and then sleeps inside the objective, so a signal sent
  once the attribute is visible in the storage lands in a running trial whose results
  are half written (user attributes set, values not yet told).
- ``$FRONTIER_TEST_TRIAL_LOG=PATH``: the number of every trial this process starts is
  appended to PATH, so a test can tell which worker ran which trial.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    import faulthandler
    import signal

    import frontier.search.find as find_module

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a test that times out asks
    # A shell without job control starts background commands (`.ci/run &`, nohup) with
    # SIGINT ignored, and children inherit that, so Ctrl-C would never arrive. The tests
    # send SIGINT as a user's Ctrl-C on a foreground run: give it its usual meaning.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from frontier.cli import main as cli_main

    stall = int(os.environ.get("FRONTIER_TEST_STALL_TRIAL", "-1"))
    log = os.environ.get("FRONTIER_TEST_TRIAL_LOG")
    real = find_module.run_trial
    barrier = os.environ.get("FRONTIER_TEST_BARRIER")  # folder shared by the workers
    parties = int(os.environ.get("FRONTIER_TEST_BARRIER_N", "0"))
    waited = False

    def run_trial(ctx: Any, trial: Any) -> Any:
        nonlocal waited
        if barrier and not waited:
            # every worker reaches its first trial before any goes on, so that a slow
            # start-up on a busy machine cannot leave one worker with nothing to do
            waited = True
            folder = Path(barrier)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / str(os.getpid())).touch()
            deadline = time.monotonic() + 240
            while len(list(folder.iterdir())) < parties and time.monotonic() < deadline:
                time.sleep(0.1)
        if log:
            with open(log, "a") as f:
                f.write(f"{trial.number}\n")
        out = real(ctx, trial)
        if trial.number == stall:
            trial.set_user_attr("test:stalled", True)
            time.sleep(600)
        return out

    find_module.run_trial = run_trial  # type: ignore[assignment]
    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
