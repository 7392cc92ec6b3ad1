"""Exceptions and warnings of :mod:`fits` (loading runs, fitting the tradeoff, selecting data).

Every error a user can cause subclasses :class:`pacbound.exceptions.TradeoffError`, so the
``tradeoff`` command reports it as one line on stderr with exit status 2.
"""

from __future__ import annotations

from typing import Any

from pacbound.exceptions import InputFileError, InvalidParameterError, TradeoffError

__all__ = [
    "DegenerateBootstrapWarning",
    "FitError",
    "FitRefusedError",
    "InsufficientDataError",
    "MetadataConflictError",
    "RunsFileError",
    "TruncatedExportWarning",
]


class RunsFileError(InputFileError):
    """A run file or folder is missing, malformed, or lacks a field the runs table needs.

    The message names the file and the field (or row).
    """


class MetadataConflictError(RunsFileError):
    """Two sources of run metadata (sidecar, columns, folder name, metrics) disagree."""


class FitError(TradeoffError):
    """Base class of the errors raised while fitting the tradeoff."""


class InsufficientDataError(FitError, InvalidParameterError):
    """The runs cannot identify the model (too few points, one budget, NaN values...)."""


class FitRefusedError(FitError):
    """The fit converged to a point that does not identify the tradeoff, and is refused.

    Raised when a shape parameter ends on the edge of its grid or on a bound, or when an
    amplitude (the gap or the extrapolation term) is about zero: the data then do not show
    the term, and a d*(n) computed from such a fit would be an artefact of the bounds.

    Attributes
    ----------
    reason : str
        ``"bound"``, ``"amplitude"`` or ``"nonfinite"``.
    params : dict of str to float
        The refused parameters, for diagnosis (never reported as a result).
    """

    def __init__(self, message: str, *, reason: str, params: dict[str, Any] | None = None):
        super().__init__(message)
        self.reason = reason
        self.params = dict(params or {})


class TruncatedExportWarning(UserWarning):
    """A W&B CSV export looks sampled or truncated: the last logged value may be missing."""


class DegenerateBootstrapWarning(RuntimeWarning):
    """Many bootstrap refits ended on a bound or with a vanished amplitude."""
