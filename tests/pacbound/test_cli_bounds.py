"""Tests of pacbound._cli_bounds: ``tradeoff kl-inv`` and ``tradeoff bound``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pacbound import catoni, f_quad, kl_bound, kl_inv_lower, kl_inv_upper, linear_lambda, mcallester
from pacbound._cli_bounds import app

RUNNER = CliRunner()
RESULT_KEYS = {
    "name", "value", "emp_risk", "kl", "n", "delta", "complexity",
    "deltas", "union", "grid", "params",
}  # fmt: skip
CASE = ["--emp-risk", "0.02", "--kl", "500", "-n", "30000", "--delta", "0.025"]


def _run(*args: str):
    return RUNNER.invoke(app, list(args))


def test_kl_inv_single_and_json() -> None:
    res = _run("kl-inv", "0.1", "0.05", "--json")
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj == {"q": 0.1, "c": 0.05, "side": "upper", "value": kl_inv_upper(0.1, 0.05)}
    low = json.loads(_run("kl-inv", "0.9", "0.05", "--lower", "--json").stdout)
    assert low["value"] == kl_inv_lower(0.9, 0.05) and low["side"] == "lower"
    text = _run("kl-inv", "0.1", "0.05")
    assert text.exit_code == 0 and repr(float(kl_inv_upper(0.1, 0.05))) in text.stdout


def test_kl_inv_lists_broadcast() -> None:
    res = _run("kl-inv", "0.1,0.2,0.3", "0.05", "--json")
    rows = json.loads(res.stdout)
    assert [r["value"] for r in rows] == [float(kl_inv_upper(q, 0.05)) for q in (0.1, 0.2, 0.3)]
    table = _run("kl-inv", "0.1,0.2", "0.05,0.1")
    assert table.exit_code == 0 and "kl inverse (upper)" in table.stdout


def test_bound_single_json_has_value_and_stable_keys() -> None:
    res = _run("bound", "kl", *CASE, "--json")
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert set(obj) == RESULT_KEYS and obj["value"] == kl_bound(0.02, 500.0, 30000, 0.025).value


def test_bound_all_is_keyed_by_bound_name() -> None:
    obj = json.loads(_run("bound", "all", *CASE, "--json").stdout)
    assert list(obj) == ["mcallester", "kl", "catoni", "linear", "quad"]
    args = (0.02, 500.0, 30000, 0.025)
    assert obj["mcallester"]["value"] == mcallester(*args).value
    assert obj["catoni"]["value"] == catoni(*args).value
    assert obj["linear"]["value"] == linear_lambda(*args).value
    assert obj["quad"]["value"] == f_quad(*args).value
    assert all(set(v) == RESULT_KEYS for v in obj.values())


def test_bound_many_rows_print_a_list() -> None:
    res = _run(
        "bound", "all", "--emp-risk", "0.02,0.1", "--kl", "500,5000", "-n", "30000,60000",
        "--delta", "0.025", "--json",
    )  # fmt: skip
    rows = json.loads(res.stdout)
    assert isinstance(rows, list) and len(rows) == 2
    assert rows[1]["kl"]["value"] == kl_bound(0.1, 5000.0, 60000, 0.025).value
    single = json.loads(_run("bound", "quad", "--emp-risk", "0.1,0.2", "--kl", "10", "-n",
                             "100", "--delta", "0.05", "--json").stdout)  # fmt: skip
    assert [r["value"] for r in single] == [f_quad(q, 10.0, 100, 0.05).value for q in (0.1, 0.2)]


def test_bound_knobs() -> None:
    obj = json.loads(_run("bound", "catoni", *CASE, "--catoni-c", "1", "--json").stdout)
    assert obj["value"] == catoni(0.02, 500.0, 30000, 0.025, C=1.0).value
    obj = json.loads(_run("bound", "catoni", *CASE, "--grid", "0.5,1,2", "--json").stdout)
    assert obj["union"] == {"C grid": 3}
    obj = json.loads(_run("bound", "kl", *CASE, "--xi", "exact", "--union", "sigma grid=12",
                          "--json").stdout)  # fmt: skip
    assert obj["union"] == {"sigma grid": 12}
    assert obj["value"] == kl_bound(0.02, 500.0, 30000, 0.025, xi="exact",
                                    union={"sigma grid": 12}).value  # fmt: skip
    obj = json.loads(_run("bound", "linear", *CASE, "--lambdas", "100,1000", "--loss-range",
                          "2", "--json").stdout)  # fmt: skip
    assert obj["grid"] == [100.0, 1000.0] and obj["params"]["loss_range"] == 2.0


def test_bound_csv(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text("run_id,emp_risk,kl,n\nA,0.02,500,30000\nB,0.1,5000,60000\n")
    rows = json.loads(_run("bound", "kl", "--csv", str(path), "--delta", "0.025", "--json").stdout)
    assert [r["row"]["run_id"] for r in rows] == ["A", "B"]
    assert rows[1]["value"] == kl_bound(0.1, 5000.0, 60000, 0.025).value
    table = _run("bound", "all", "--csv", str(path), "--delta", "0.025")
    assert table.exit_code == 0 and "run_id" in table.stdout and "mcallester" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kl-inv", "1.5", "0.1"], "error: `q` must be in [0, 1]; got 1.5."),
        (
            ["kl-inv", "0.5", "abc"],
            "error: `c` must be a number or a comma-separated list of numbers; got 'abc'.",
        ),
        (["kl-inv"], "error: `q` is required"),
        (["bound"], "error: `BOUND` is required"),
        (
            ["bound", "foo", *CASE],
            "error: `BOUND` must be one of mcallester, kl, catoni, linear, quad, all; got 'foo'.",
        ),
        (
            ["bound", "kl", "--emp-risk", "0.1"],
            "error: `--kl` is required (or --csv FILE); got nothing.",
        ),
        (["bound", "kl", *CASE[:-1], "1.5"], "error: `delta` must be in (0, 1); got 1.5."),
        (
            ["bound", "kl", "--emp-risk", "0.1", "--kl", "1", "-n", "2.5", "--delta", "0.05"],
            "error: `n` must be an integer >= 1; got 2.5.",
        ),
        (
            ["bound", "kl", *CASE, "--xi", "x"],
            "error: `xi` must be one of '2sqrt', 'exact', 'n+1'; got 'x'.",
        ),
        (
            ["bound", "kl", *CASE, "--union", "grid"],
            "error: `--union` must be LABEL=SIZE with an integer SIZE >= 1; got 'grid'.",
        ),
        (
            ["bound", "catoni", *CASE, "--catoni-c", "1,2"],
            "error: `--catoni-c` must be a single number; got '1,2'.",
        ),
        (
            [
                "bound",
                "kl",
                "--emp-risk",
                "0.1,0.2",
                "--kl",
                "1,2,3",
                "-n",
                "10",
                "--delta",
                "0.05",
            ],
            "error: comma lists must have equal lengths",
        ),
        (
            ["bound", "kl", "--csv", "/nonexistent/runs.csv"],
            "error: No such file or directory: /nonexistent/runs.csv",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    res = _run(*args)
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), res.stderr
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "emp_risk,kl,n,delta\n0.1,abc,100,0.05\n",
            "row 2, field `kl`: must be a number; got 'abc'.",
        ),
        (
            "emp_risk,kl,n,delta\n0.1,1,100,0.05\n1.5,1,100,0.05\n",
            "row 3: `emp_risk` must be in [0, 1]; got 1.5.",
        ),
        (
            "emp_risk,kl,n\n0.1,1,100\n",
            "missing column `delta` (columns: emp_risk, kl, n); add it or pass --delta.",
        ),
        ("emp_risk,kl,n,delta\n", "no data rows."),
        ("", "empty file"),
    ],
)
def test_bad_csv_names_the_file_row_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    res = _run("bound", "kl", "--csv", str(path))
    assert res.exit_code == 2
    assert res.stderr.strip() == f"error: {path}: {message}" or message in res.stderr


def test_console_script_subprocess() -> None:
    exe = shutil.which("tradeoff") or str(Path(sys.executable).with_name("tradeoff"))
    done = subprocess.run(
        [exe, "bound", "kl", *CASE, "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["value"] == kl_bound(0.02, 500.0, 30000, 0.025).value
    bad = subprocess.run([exe, "kl-inv", "2", "0.1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: `q` must be in [0, 1]; got 2.0."
