"""``run_sweep``: specs as dicts or files, the result object, and backend checks."""

from __future__ import annotations

import json

import pytest

from fits import SweepResult, run_sweep
from pacbound.exceptions import InvalidParameterError

pytestmark = pytest.mark.usefixtures("sweep_env")

SPEC = {
    "task": {"test_per_op": 2},
    "difficulty": {"centers": [4]},
    "budget": {"n": [8]},
    "train": {"batch_size": 8},
    "eval": {"batch_size": 64},
}


def test_run_from_a_file_then_from_a_dict_resumes(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SPEC), encoding="utf-8")
    first = run_sweep(path, tmp_path / "sw", progress=True)
    assert isinstance(first, SweepResult)
    assert (first.planned, first.ran, first.skipped, first.failed) == (1, 1, 0, 0)
    assert first.results[0]["status"] == "done" and "1 ran now" in str(first)
    again = run_sweep(SPEC, tmp_path / "sw")
    assert (again.ran, again.skipped) == (0, 1) and again.results == ()
    assert json.loads(json.dumps(again.to_dict()))["skipped"] == 1


def test_backend_errors_come_before_any_work(tmp_path):
    with pytest.raises(InvalidParameterError, match="`backend` must be one of 'local', 'ray'"):
        run_sweep(SPEC, tmp_path / "a", backend="slurm")
    with pytest.raises(InvalidParameterError, match="`address` needs --backend ray"):
        run_sweep(SPEC, tmp_path / "b", address="10.0.0.1:6379")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_dry_run_does_not_create_the_output_folder(tmp_path):
    """`sweep run --dry-run` used to create the sweep folder (issue 15, item 10)."""
    from typer.testing import CliRunner

    from fits.cli.main import app

    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(SPEC), encoding="utf-8")
    out = tmp_path / "new" / "sweep"
    res = CliRunner().invoke(app, ["sweep", "run", str(spec), "--out", str(out), "--dry-run",
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["runs"]) == 1
    assert not (tmp_path / "new").exists()
