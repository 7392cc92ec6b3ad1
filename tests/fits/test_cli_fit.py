"""`tradeoff fit` and `tradeoff select`: exit codes, JSON keys, files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fits.cli.main import app
from tests.fits._sim import simulate_runs

runner = CliRunner()


def fit_cli(runs, out, bootstrap, *extra, baselines=False):
    """`tradeoff fit RUNS --out OUT` with BOOTSTRAP refits, no cross-validation, no plots."""
    args = ["fit", runs, "--out", out, "--n-resamples", bootstrap, "--no-cv", "--no-plots", *extra]
    if not baselines:
        args.append("--no-baselines")
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    simulate_runs(0).to_csv(path, index=False)
    return path


def test_fit_json_and_files(runs_csv, tmp_path):
    out = tmp_path / "fit"
    res = fit_cli(runs_csv, out, 40, "--json", "--seed", 3, baselines=True)
    assert res.exit_code == 0, res.stderr
    obj = json.loads(res.stdout)
    assert {"model", "params", "d_star", "intervals", "verdict", "comparison", "files"} <= set(obj)
    assert [set(d) >= {"n", "value", "interval", "bracketed"} for d in obj["d_star"]] == [
        True
    ] * 4
    assert [d["n"] for d in obj["d_star"]] == [64, 256, 1024, 2048]
    assert obj["model"]["label"] == "mcallester gap, K=power, T=power, n^-1/2"
    assert (out / "fit.json").is_file() and (out / "report.html").is_file()
    assert (out / "tables" / "d_star.csv").is_file()
    saved = json.loads((out / "fit.json").read_text())
    assert saved["params"] == obj["params"] and saved["config"]["seed"] == 3


def test_fit_prints_a_summary(runs_csv, tmp_path):
    res = fit_cli(runs_csv, tmp_path / "o", 20, "--model", "exp", "--loss", "huber")
    assert res.exit_code == 0, res.stderr
    assert "Tradeoff fit: mcallester gap, K=exp, T=exp" in res.stdout and "verdict:" in res.stdout
    assert "loss: huber (f_scale" in res.stdout


def test_user_errors_exit_2_with_one_line(runs_csv, tmp_path):
    flat = simulate_runs(1, truth={"B": 0.0})
    path = tmp_path / "flat.csv"
    flat.to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--out", str(tmp_path / "x"), "--n-resamples", "0"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: fit refused") and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr and not (tmp_path / "x").exists()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"run_id": ["a"], "n": [3]}).to_csv(bad, index=False)
    res = runner.invoke(app, ["fit", str(bad), "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and "field `difficulty` is missing" in res.stderr
    res = runner.invoke(app, ["fit", str(runs_csv), "--out", str(tmp_path / "z"), "--bounds", "b=3"])
    assert res.exit_code == 2 and "`--bounds` must be NAME=LOW:HIGH" in res.stderr
    res = runner.invoke(app, ["fit", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "z")])
    assert res.exit_code == 2 and "no such file or folder" in res.stderr


def test_select_command(runs_csv, tmp_path):
    fit_dir = tmp_path / "fit"
    res = fit_cli(runs_csv, fit_dir, 20)
    assert res.exit_code == 0, res.stderr
    pool = tmp_path / "pool.csv"
    pd.DataFrame({"id": np.arange(500), "score": np.linspace(1.5, 6.5, 500)}).to_csv(
        pool, index=False
    )
    out = tmp_path / "sel.csv"
    res = runner.invoke(
        app,
        [
            "select",
            str(pool),
            "--budget",
            "100",
            "--fit",
            str(fit_dir),
            "--out",
            str(out),
            "--mode",
            "mixture",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.stderr
    obj = json.loads(res.stdout)
    assert obj["n_selected"] == 100 and obj["mode"] == "mixture" and obj["column"] == "score"
    assert len(pd.read_csv(out)) == 100
    res = runner.invoke(
        app, ["select", str(pool), "--budget", "900", "--fit", str(fit_dir), "--out", str(out)]
    )
    assert res.exit_code == 2 and "`budget` must be at most the dataset size 500" in res.stderr


def test_fit_with_threshold_robustness(runs_csv, tmp_path):
    runs = pd.read_csv(runs_csv)
    rng = np.random.default_rng(0)
    ex = pd.DataFrame(
        [
            {"run_id": rid, "length": s}
            for rid, d in zip(runs["run_id"], runs["difficulty"], strict=True)
            for s in rng.uniform(d - 0.5, d + 0.5, 10)
        ]
    )
    ex_path = tmp_path / "examples.csv"
    ex.to_csv(ex_path, index=False)
    out = tmp_path / "fit"
    res = fit_cli(
        runs_csv,
        out,
        10,
        *("--examples", ex_path, "--score-column", "length", "--thresholds", "2.5,3.5,4.5,5.5"),
        *("--train-model", "flat", "--json"),
    )
    assert res.exit_code == 0, res.stderr
    obj = json.loads(res.stdout)
    assert obj["robustness"]["thresholds"] == [2.5, 3.5, 4.5, 5.5]
    assert len(obj["robustness"]["table"]) == 5 * 4
    assert (out / "tables" / "robustness.csv").is_file()
    assert "Threshold robustness" in (out / "report.html").read_text()


def test_warnings_are_one_line_each(tmp_path):
    path = tmp_path / "runs.csv"
    simulate_runs(1, noise=0.01).to_csv(path, index=False)
    res = fit_cli(path, tmp_path / "o", 100, "--bounds", "b=0.75:1.3")
    assert res.exit_code == 0, res.stderr
    lines = res.stderr.strip().splitlines()
    assert (
        lines
        and lines[0].startswith("warning: ")
        and "bootstrap refits ended on a bound" in lines[0]
    )
