"""The error contract: what each fits error means to a caller and to the command line.

Not the class tree itself, but what it is for: a caller catching the pacbound base classes
catches fits' errors raised by real calls, and the CLI turns every fits error into one line
on stderr with exit status 2 (no traceback).
"""

from __future__ import annotations

import inspect

import pytest
import typer

import fits.exceptions
from fits import Refusal, fit_tradeoff, load_fit
from pacbound.exceptions import InputFileError, InvalidParameterError, TradeoffError
from pacbound.support import user_errors
from tests.fits._sim import simulate_runs

QUICK = {"n_resamples": 0, "cv": False, "baselines": False}

ERRORS = [
    obj
    for name in fits.exceptions.__all__
    if inspect.isclass(obj := getattr(fits.exceptions, name)) and not issubclass(obj, Warning)
]


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_becomes_one_line_and_exit_2(cls, capsys):
    kwargs = {"reason": "bound"} if cls is fits.exceptions.FitRefusedError else {}
    with pytest.raises(typer.Exit) as info, user_errors():
        raise cls("`runs`: the message names the input.", **kwargs)
    assert info.value.exit_code == 2
    assert capsys.readouterr().err == "error: `runs`: the message names the input.\n"


def test_a_missing_fit_file_is_an_input_file_error(tmp_path):
    with pytest.raises(InputFileError, match=r"nope\.json: no such fit file"):
        load_fit(tmp_path / "nope.json")


def test_too_few_budgets_is_an_invalid_parameter(tmp_path):
    runs = simulate_runs(0)
    with pytest.raises(InvalidParameterError, match=r"2 or more budgets") as info:
        fit_tradeoff(runs[runs["n"] == 64], **QUICK)
    assert isinstance(info.value, fits.exceptions.InsufficientDataError)


def test_a_refused_fit_carries_its_refusal_and_parameters():
    with pytest.raises(TradeoffError) as info:
        fit_tradeoff(simulate_runs(1, truth={"B": 0.0}), **QUICK)
    err = info.value
    assert isinstance(err, fits.exceptions.FitRefusedError) and not isinstance(err, ValueError)
    assert err.reason == Refusal.VANISHED_AMPLITUDE.reason
    assert set(err.params) >= {"A", "B", "E"} and abs(err.params["B"]) < 1e-6
    assert "extrapolation amplitude B" in str(err)
    # every refusal has a distinct reason, so a caller can tell them apart
    assert len({r.reason for r in Refusal}) == len(Refusal)
