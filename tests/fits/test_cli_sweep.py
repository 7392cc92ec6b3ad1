"""``tradeoff data synth|pretrain``, ``tradeoff sweep run|status`` and ``tradeoff demo`` CLIs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from fits import SyntheticProblem, check_problem
from fits.cli.main import app

pytestmark = pytest.mark.usefixtures("sweep_env")

runner = CliRunner()


def test_data_synth_jsonl_and_parquet(tmp_path):
    out = tmp_path / "s.jsonl"
    res = runner.invoke(
        app,
        ["data", "synth", "--ops", "2-8", "-n", "200", "--seed", "0", "--out", str(out), "--json"],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["n"] == 200 and set(summary["ops_counts"]) <= {str(k) for k in range(2, 9)}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 200 and {r["ops"] for r in rows} == set(range(2, 9))
    assert all(check_problem(SyntheticProblem(**r)) for r in rows)
    pq = tmp_path / "s.parquet"
    res = runner.invoke(
        app, ["data", "synth", "--ops", "2-8", "-n", "200", "--seed", "0", "--out", str(pq)]
    )
    assert res.exit_code == 0 and "wrote 200 problems" in res.stdout
    frame = pd.read_parquet(pq)
    assert list(frame.columns) == ["uid", "prompt", "completion", "answer", "ops"]
    assert frame.to_dict("records") == rows  # same seed, same problems, either format
    mix = runner.invoke(
        app,
        [
            "data",
            "synth",
            "--center",
            "6",
            "-n",
            "300",
            "--out",
            str(tmp_path / "m.jsonl"),
            "--json",
        ],
    )
    assert mix.exit_code == 0
    assert json.loads(mix.stdout)["distribution"]["label"] == "mix6"


def test_user_errors_exit_2_with_one_line(tmp_path):
    cases = [
        ["data", "synth", "--ops", "0-3", "--out", str(tmp_path / "x.jsonl")],
        ["data", "synth", "--ops", "two", "--out", str(tmp_path / "x.jsonl")],
        ["data", "synth", "--out", str(tmp_path / "x.xlsx")],
        ["data", "synth", "-n", "0", "--out", str(tmp_path / "x.jsonl")],
        ["sweep", "run", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")],
        ["sweep", "status", str(tmp_path)],
        ["data", "pretrain", "--ops", "3-9", "--out", str(tmp_path / "b")],
    ]
    for args in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
        assert "Traceback" not in res.output


def test_sweep_run_dry_run_and_status(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(
        "[difficulty]\ncenters = [2, 6]\n[budget]\nn = [8, 16]\nseeds = [0, 1]\n", encoding="utf-8"
    )
    res = runner.invoke(
        app, ["sweep", "run", str(spec), "--out", str(tmp_path / "sw"), "--dry-run", "--json"]
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["runs"]
    assert len(rows) == 8 and all(r["pending"] for r in rows)
    assert not (tmp_path / "sw").exists()  # a dry run writes nothing
    bad = tmp_path / "b.toml"
    bad.write_text('[budget]\nn = [8]\n[train]\nlr = "fast"\n', encoding="utf-8")
    res = runner.invoke(app, ["sweep", "run", str(bad), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "`train.lr` must be a number in [1e-12, 10]; got 'fast'." in res.stderr
    res = runner.invoke(
        app, ["sweep", "run", str(spec), "--out", str(tmp_path / "y"), "--backend", "slurm"]
    )
    assert res.exit_code == 2 and "`backend` must be one of 'local', 'ray'" in res.stderr


def test_sweep_run_status_examples_and_theory_commands(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "task:\n  test_per_op: 2\ndifficulty:\n  centers: [2, 6]\nbudget:\n  n: [8]\n"
        "train:\n  batch_size: 8\neval:\n  batch_size: 64\n",
        encoding="utf-8",
    )
    sweep = tmp_path / "sw"
    res = runner.invoke(app, ["sweep", "run", str(spec), "--out", str(sweep), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["ran"] == 2
    res = runner.invoke(app, ["sweep", "status", str(sweep)])
    assert res.exit_code == 0 and "2 done" in res.stdout
    table = tmp_path / "ex.csv"
    res = runner.invoke(app, ["sweep", "examples", str(sweep), "--out", str(table)])
    assert res.exit_code == 0, res.output
    ex = pd.read_csv(table)
    assert len(ex) == 16 and set(ex.columns) == {"run_id", "example", "score"}
    assert ex["score"].between(1, 8).all()
    res = runner.invoke(
        app,
        [
            "sweep",
            "theory",
            str(sweep),
            "--out",
            str(tmp_path / "th"),
            "--gibbs-samples",
            "2",
            "--gibbs-batch",
            "4",
            "--no-plots",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["per_run"]) == 2 and out["notes"]
    assert (tmp_path / "th" / "theory.json").is_file()
