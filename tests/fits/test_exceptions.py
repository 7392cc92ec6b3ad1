"""The exception hierarchy: every user error is a TradeoffError."""

from __future__ import annotations

from fits.exceptions import (
    DegenerateBootstrapWarning,
    FitRefusedError,
    InsufficientDataError,
    MetadataConflictError,
    RunsFileError,
    TruncatedExportWarning,
)
from pacbound.exceptions import InputFileError, InvalidParameterError, TradeoffError


def test_hierarchy():
    assert issubclass(RunsFileError, InputFileError) and issubclass(
        MetadataConflictError, RunsFileError
    )
    assert issubclass(InsufficientDataError, InvalidParameterError)
    assert issubclass(FitRefusedError, TradeoffError) and not issubclass(
        FitRefusedError, ValueError
    )
    err = FitRefusedError("why", reason="bound", params={"b": 0.02})
    assert err.reason == "bound" and err.params == {"b": 0.02} and str(err) == "why"
    assert issubclass(TruncatedExportWarning, UserWarning)
    assert issubclass(DegenerateBootstrapWarning, RuntimeWarning)
