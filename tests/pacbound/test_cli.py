"""Shared command-line plumbing (pacbound._cli): option parsing, output and warnings."""

from __future__ import annotations

import math
import warnings

import pytest
import typer
from typer.testing import CliRunner

from pacbound._cli import (
    parse_assignments,
    parse_float,
    parse_floats,
    print_result,
    split_names,
    warnings_to_stderr,
)
from pacbound.exceptions import InvalidParameterError


def test_split_names():
    assert split_names(" a, b ,,c ") == ["a", "b", "c"]
    assert split_names(None) == [] and split_names("") == [] and split_names(" , ") == []


def test_parse_floats_and_parse_float():
    assert parse_floats("0.1, 2", "--d-range", 2, form="two numbers LO,HI") == (0.1, 2.0)
    with pytest.raises(
        InvalidParameterError, match=r"^`--d-range` must be two numbers LO,HI; got '1'\.$"
    ):
        parse_floats("1", "--d-range", 2, form="two numbers LO,HI")
    assert parse_float(" 1e-3 ", "--sigma") == 1e-3
    with pytest.raises(InvalidParameterError, match=r"^`--sigma` must be a single number; got"):
        parse_float("1,2", "--sigma")
    with pytest.raises(InvalidParameterError, match=r"^`--sigma` must be a number or a comma"):
        parse_float("x", "--sigma")


def test_parse_assignments():
    assert parse_assignments([" k = v ", "a=b=c"], "--column") == {"k": "v", "a": "b=c"}
    assert parse_assignments(["a=b=3"], "--union", convert=int, split_last=True) == {"a=b": 3}
    assert parse_assignments(["k=1", "k=2"], "--column") == {"k": "2"}  # the last one wins
    for bad in ("k", "=v", "k=", " = "):
        with pytest.raises(
            InvalidParameterError, match=rf"^`--column` must be NAME=VALUE; got '{bad}'\.$"
        ):
            parse_assignments([bad], "--column")


def test_parse_assignments_with_a_converter_a_key_check_and_unique_keys():
    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value

    kw = dict(form="NAME=NUMBER", convert=finite, key_ok=str.isidentifier, unique="parameter")
    assert parse_assignments(["g=2", "k=1.5"], "--param", **kw) == {"g": 2.0, "k": 1.5}
    for bad in ("g=inf", "g=x", "1g=2"):
        with pytest.raises(
            InvalidParameterError, match=rf"^`--param` must be NAME=NUMBER; got '{bad}'\.$"
        ):
            parse_assignments([bad], "--param", **kw)
    with pytest.raises(
        InvalidParameterError, match=r"^`--param` must name each parameter once; got 'g' twice\.$"
    ):
        parse_assignments(["g=1", "g=2"], "--param", **kw)


def test_print_result_and_warnings_to_stderr():
    app = typer.Typer()

    @app.command()
    def main(as_json: bool = typer.Option(False, "--json")) -> None:
        with warnings_to_stderr(UserWarning):
            warnings.warn("shown once", UserWarning, stacklevel=1)
            warnings.warn("shown once", UserWarning, stacklevel=1)
            warnings.warn("not for the user", DeprecationWarning, stacklevel=1)
        print_result("text form", as_json=as_json, payload={"value": float("nan")})

    runner = CliRunner()
    plain = runner.invoke(app, [])
    assert plain.exit_code == 0 and plain.stdout == "text form\n"
    assert plain.stderr == "warning: shown once\n"
    as_json = runner.invoke(app, ["--json"])
    assert as_json.stdout == '{\n  "value": null\n}\n'
