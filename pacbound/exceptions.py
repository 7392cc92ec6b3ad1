"""Exceptions shared by the whole toolkit.

Every error that a user can cause (a bad argument, a malformed file, checkpoints that do not
pair) is a subclass of :class:`TradeoffError`; the ``tradeoff`` command turns those into one line
on stderr and exit status 2, never a traceback. ``measurement`` and ``fits`` subclass these in
their own ``exceptions`` modules.
"""

from __future__ import annotations

__all__ = ["InputFileError", "InvalidParameterError", "TradeoffError"]


class TradeoffError(Exception):
    """Base class of every user-facing error raised by the toolkit."""


class InvalidParameterError(TradeoffError, ValueError):
    """An argument has a value outside what is allowed.

    The message names the argument, echoes the value and states the allowed set, e.g.
    "`delta` must be in the open interval (0, 1); got 1.5."
    """


class InputFileError(TradeoffError, ValueError):
    """An input file is missing, unreadable, malformed or has missing fields.

    The message names the file (and the row, field or tensor where it applies).
    """
