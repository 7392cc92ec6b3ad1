"""Backends: local worker processes and Ray (a local cluster with 2 CPUs)."""

from __future__ import annotations

import json
import os

import pytest

import fits
from fits import run_sweep
from fits.sweep._backends import _order
from fits.sweep._plan import PlannedRun

pytestmark = pytest.mark.usefixtures("sweep_env")

SPEC = {
    "name": "backend",
    "task": {"test_per_op": 2},
    "difficulty": {"centers": [2, 6]},
    "budget": {"n": [8], "seeds": [0]},
    "train": {"batch_size": 8, "logging_steps": 1},
    "eval": {"batch_size": 64},
}


def test_longest_runs_are_scheduled_first():
    runs = [
        PlannedRun(f"r{i}", "mix2", d, n, 0, "epochs", 3.0, s)
        for i, (d, n, s) in enumerate([(2, 8, 3), (6, 64, 24), (2, 64, 24), (6, 8, 3)])
    ]
    assert [r.run_id for r in _order(runs)] == ["r1", "r2", "r3", "r0"]


def _pids(root):
    return {json.loads((p / "run_meta.json").read_text())["pid"] for p in (root / "runs").iterdir()}


@pytest.mark.slow
def test_local_worker_processes(tmp_path):
    result = run_sweep(SPEC, tmp_path, workers=2)
    assert (result.ran, result.failed) == (2, 0)
    pids = _pids(tmp_path)
    assert os.getpid() not in pids and len(pids) >= 1
    assert len(fits.load_runs(tmp_path)) == 2


@pytest.mark.slow
def test_ray_backend_on_a_local_cluster(tmp_path):
    pytest.importorskip("ray")
    result = run_sweep(SPEC, tmp_path, backend="ray", workers=2)
    assert (result.planned, result.ran, result.failed) == (2, 2, 0), result
    assert os.getpid() not in _pids(tmp_path)  # the runs executed in Ray worker processes
    runs = fits.load_runs(tmp_path)
    assert len(runs) == 2 and runs["test_loss"].notna().all()
    again = run_sweep(SPEC, tmp_path, backend="ray", workers=2)
    assert (again.ran, again.skipped) == (0, 2)  # nothing to do: Ray is not even started
