"""The one exception type users see: its message is a complete one-line explanation."""

from __future__ import annotations


class FrontierError(Exception):
    """A problem with the user's input or environment, explained in one line.

    The CLI prints ``error: <message>`` and exits non-zero, without a traceback
    (unless ``--debug``). Library code raises it wherever the cause is something
    the user can fix; bugs stay ordinary exceptions.
    """


__all__ = ["FrontierError"]
