"""``tradeoff derive`` (pacbound._cli_derive): output, JSON keys, exit codes, error lines."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fits.cli.main import app as top_app
from pacbound.cli import app

RUNNER = CliRunner()
POWER_PARAMS = ["--param", "A=1", "--param", "C=1", "--param", "k=1", "--param", "g=2",
                "--param", "t=1", "--param", "b=1"]  # fmt: skip


def _run(*args, top=False):
    return RUNNER.invoke(top_app if top else app, list(args))


def test_default_derivation_text():
    res = _run("derive", top=True)  # mounted as a top-level command
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert out.startswith("Tradeoff B(d, n) = G_gen(K(d), n) + C*T(d)\n")
    assert "First-order condition dB/dd = 0:" in out
    assert "  d*(n) = n**(1/(2*b + g))*(2*C*b*t/(A*g*sqrt(k)))**(1/(b + g/2))" in out
    assert "Sign of dd*/dn: positive" in out


def test_latex_and_budgets():
    res = _run("derive", "--K", "exp", "--T", "exp", "--latex")
    assert res.exit_code == 0 and res.stdout.startswith("\\begin{align*}")
    res = _run("derive", "--n", "16,10000", *POWER_PARAMS)
    assert res.exit_code == 0
    table = res.stdout.splitlines()[-4:]
    del table[1]  # the column headings
    assert table[0].startswith("d*(n) (closed form; A=1, C=1, b=1, g=2, k=1, t=1)")
    assert table[1].split()[:2] == ["16", "2"] and table[2].split()[:2] == ["10000", "10"]


def test_json_object_with_stable_keys():
    res = _run("derive", "--gen", "linear", "--K", "power", "--T", "power", "--json")
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    for key in ("gen", "K", "T", "B", "foc", "d_star", "d_star_latex", "dd_dn", "dd_dn_sign",
                "monotone_in_n", "elasticity", "d_star_values"):  # fmt: skip
        assert key in out
    assert out["gen"] == "linear" and out["K"] == "power" and out["d_star_values"] is None
    assert out["d_star"] == "n**(1/(2*b + g))*(2*sqrt(2)*C*b*t/(A*g*sqrt(k)))**(1/(b + g/2))"
    assert out["dd_dn_sign"] == "positive" and out["monotone_in_n"] == "increasing"

    res = _run("derive", "--K", "d**2 + d", "--T", "1/(1 + d)", "--json", "--n", "10,1e4",
               "--param", "A=1", "--param", "C=1", "--d-range", "0.01,100")  # fmt: skip
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert out["d_star"] is None and out["K_family"] == "expression"
    values = out["d_star_values"]
    assert values["method"] == "numeric" and values["d_range"] == [0.01, 100.0]
    rows = values["rows"]
    assert [r["n"] for r in rows] == [10.0, 1e4] and all(r["bracketed"] for r in rows)
    assert rows[1]["d_star"] == pytest.approx(8.993057432761253, rel=1e-10)


def test_not_bracketed_rows_are_marked():
    res = _run("derive", "--n", "10,1e8", "--d-range", "0.1,50", "--json", *POWER_PARAMS)
    rows = json.loads(res.stdout)["d_star_values"]["rows"]
    assert [r["bracketed"] for r in rows] == [True, False]
    text = _run("derive", "--n", "10,1e8", "--d-range", "0.1,50", *POWER_PARAMS).stdout
    assert text.splitlines()[-1].endswith("not bracketed (at the edge of the range)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--K", "d**"], "error: `K` must be 'power', 'exp' or an expression in d such as "
         "'k*d**2 + d'; got 'd**' (invalid syntax)."),
        (["--T", "powr"], "error: `T` must be 'power', 'exp' or an expression in d such as "
         "'t/(1 + d)'; got 'powr' (it does not depend on d)."),
        (["--K", "foo(d)"], "error: `K` must be 'power', 'exp' or an expression in d such as "
         "'k*d**2 + d'; got 'foo(d)' (unknown function 'foo'; allowed: exp, ln, log, sqrt)."),
        (["--gen", "catoni"], "error: `gen` must be one of 'mcallester', 'linear'; got 'catoni'."),
        (["--param", "k"], "error: `--param` must be NAME=VALUE with a finite number VALUE "
         "(e.g. k=1.5); got 'k'."),
        (["--param", "x=1"], "error: `--param` must name a parameter of this tradeoff "
         "(A, C, b, g, k, t); got 'x'."),
        (["--param", "k=-1"], "error: `k` must be in (0, inf); got -1.0."),
        (["--d-range", "1"], "error: `--d-range` must be two numbers LO,HI; got '1'."),
        (["--n", "10,x"], "error: `--n` must be a number or a comma-separated list of numbers; "
         "got 'x'."),
        (["--n", "10", "--param", "A=1"], "error: `C` must be given (a positive number) to "
         "evaluate B(d, n); got no value (parameters: A, C, b, g, k, t)."),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(args, message):
    res = _run("derive", *args)
    assert res.exit_code == 2
    assert res.stdout == ""
    assert res.stderr == message + "\n"
    assert "Traceback" not in res.stderr
