"""What every command shares: quiet libraries, one-line warnings and errors, exit statuses.

Exit statuses: 0 done; 1 a check failed (``verify``) or an unexpected error; 2 bad usage
(argparse) or an error the user can fix (:class:`~frontier.errors.FrontierError`); 3 no
trial meets every SLO (``find``); 128+N stopped by signal N. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from frontier.errors import FrontierError


def run(args: argparse.Namespace) -> int:
    """Set up the process for ``args``' command, call its handler, turn errors into lines."""
    from frontier import _signals

    debug = bool(args.debug)
    if not debug:
        _one_line_warnings()
    _signals.install()  # SIGTERM/SIGHUP stop like Ctrl-C: the running trial is marked failed
    from frontier import settings

    settings.return_freed_memory()  # resident memory follows the tensors alive (memory.py)
    try:
        if args.loads_models:
            quiet_libraries(debug=debug)
        if getattr(args, "threads", None) is not None:
            settings.set_threads(args.threads)
        settings.set_memory_budget(getattr(args, "memory", None))
        return int(args.handler(args))
    except FrontierError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return _signals.exit_status(exc)
    except Exception as exc:  # a bug or an unforeseen failure: still one line
        if debug:
            raise
        print(
            f"error: {type(exc).__name__}: {exc} (unexpected; --debug shows the traceback)",
            file=sys.stderr,
        )
        return 1


def quiet_libraries(*, debug: bool) -> None:
    """transformers, lm-eval and datasets say only errors and draw no progress bars;
    Optuna says warnings, a failed trial as one line (its traceback with ``debug``).

    That includes the bars libraries draw with tqdm directly (transformers' GGUF
    conversion: a log got one line of carriage-return frames): ``TQDM_DISABLE``, which
    tqdm reads when it is imported. frontier's own progress lines say what runs."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore", module="transformers")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    for name in ("lm-eval", "lm_eval", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not debug:
        _one_line_optuna_logs()


def _one_line_optuna_logs() -> None:
    """Optuna logs a failed trial (NaN, Ctrl-C) with its traceback: keep the line only."""
    import optuna

    class OneLine(logging.StreamHandler):
        def emit(self, record: logging.LogRecord) -> None:
            record = logging.makeLogRecord(
                {**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None}
            )
            self.stream = sys.stderr  # the current one (tests and redirections replace it)
            super().emit(record)

    logger = logging.getLogger("optuna")
    if not any(type(h).__name__ == "OneLine" for h in logger.handlers):
        optuna.logging.disable_default_handler()
        handler = OneLine()
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
        logger.addHandler(handler)


def _one_line_warnings() -> None:
    """``warning: MESSAGE``, not the file, line and source of the code that warned."""
    import warnings

    def one_line(message: Warning | str, *_args: Any, **_kwargs: Any) -> str:
        return f"warning: {message}\n"

    warnings.formatwarning = one_line
