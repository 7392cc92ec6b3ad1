"""Shared command-line plumbing (pacbound.support._cli): option parsing, output and warnings."""

from __future__ import annotations

import math
import warnings

import pytest
import typer
from typer.testing import CliRunner

from pacbound.exceptions import InvalidParameterError
from pacbound.support._cli import (
    parse_assignments,
    parse_float,
    parse_floats,
    print_result,
    split_names,
    warnings_to_stderr,
)


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


def test_reflow_help_joins_prose_and_blocks_examples():
    from pacbound.support._cli import reflow_help

    text = """Summary line.

    A prose paragraph
    over two lines.

    - a list
      keeps its breaks

    Examples:

        tradeoff kl-inv 0.1 0.05

    tradeoff kl-inv 0.9 0.05 --lower
    """
    out = reflow_help(text).split("\n\n")
    assert out[0] == "Summary line."
    assert out[1] == "A prose paragraph over two lines."
    assert out[2] == "- a list\n  keeps its breaks"
    assert out[3] == (
        "\b\nExamples:\n  tradeoff kl-inv 0.1 0.05\n  tradeoff kl-inv 0.9 0.05 --lower"
    )
    assert len(out) == 4


def test_every_command_renders_its_examples_indented():
    """No command's help loses the indentation of its examples (rich's cleandoc trap)."""
    import typer
    from typer.testing import CliRunner

    from fits.cli.main import app

    root = typer.main.get_command(app)

    def leaves(group, path):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from leaves(cmd, [*path, name])
            else:
                yield [*path, name], cmd

    runner = CliRunner()
    checked = 0
    for path, cmd in leaves(root, []):
        if "Examples:" not in (cmd.help or ""):
            continue
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, path
        lines = res.output.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip() == "Examples:")
        example = lines[start + 1]
        assert example.strip().startswith("tradeoff"), (path, example)
        assert len(example) - len(example.lstrip()) > lines[start].index("E"), (path, example)
        checked += 1
    assert checked >= 10
