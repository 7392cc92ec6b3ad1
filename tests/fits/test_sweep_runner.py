"""Resumable sweep folders: complete runs, skipping, failures, a kill mid-sweep, fits loading."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import fits
from fits import SpecError, SweepSpec, run_sweep, sweep_status
from fits.sweep._runner import clean_stale_tmp, execute_run, load_plan, prepare_sweep

pytestmark = pytest.mark.usefixtures("sweep_env")

TINY = {
    "name": "tiny",
    "task": {"test_per_op": 2},
    "difficulty": {"centers": [2, 6]},
    "budget": {"n": [8, 16], "seeds": [0]},
    "train": {"batch_size": 8, "logging_steps": 1},
    "eval": {"batch_size": 64},
}
RUN_FILES = {
    "config.json",
    "model.safetensors",
    "generation_config.json",
    "trainer_state.json",
    "all_results.json",
    "run_meta.json",
    "weight_stats.parquet",
    "weight_stats.json",
    "tokenizer.json",
}


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    result = run_sweep(TINY, root)
    return root, result


def test_runs_are_standard_folders_that_fits_loads(tiny_sweep):
    root, result = tiny_sweep
    assert (result.planned, result.ran, result.failed) == (4, 4, 0)
    for run in (root / "runs").iterdir():
        assert RUN_FILES <= {p.name for p in run.iterdir()}
        assert "training_args.bin" not in {p.name for p in run.iterdir()}
        res = json.loads((run / "all_results.json").read_text())
        for key in (
            "train_loss",
            "eval_test_loss",
            "eval_test_accuracy",
            "eval_train_loss",
            "eval_train_accuracy",
            "eval_inrange_accuracy",
            "eval_extrap_loss",
            "eval_ops8_accuracy",
        ):
            assert key in res
        state = json.loads((run / "trainer_state.json").read_text())
        assert state["global_step"] >= 1 and any("loss" in e for e in state["log_history"])
        assert any("eval_test_loss" in e for e in state["log_history"])
        meta = json.loads((run / "run_meta.json").read_text())
        assert meta["run_id"] == run.name and meta["budget_mode"] == "epochs"
        assert meta["difficulty_info"]["tv_test"] > 0
    runs = fits.load_runs(root)
    assert len(runs) == 4 and set(runs["difficulty"]) == {2.0, 6.0}
    assert set(runs["n"]) == {8, 16}
    assert (runs["sq_dist"] > 0).all() and runs["train_loss"].notna().all()
    assert runs["test_acc_ops1"].notna().all()


def test_rerun_skips_everything_and_status_reports_done(tiny_sweep):
    root, _ = tiny_sweep
    stamps = {p.name: p.stat().st_mtime_ns for p in (root / "runs").iterdir()}
    again = run_sweep(TINY, root)
    assert (again.ran, again.skipped) == (0, 4)
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (root / "runs").iterdir()}
    status = sweep_status(root)
    assert status.counts == {"done": 4} and status.complete
    assert "4 done" in str(status)


def test_changed_config_is_refused_but_the_grid_may_grow(tiny_sweep, tmp_path):
    root, _ = tiny_sweep
    with pytest.raises(SpecError, match=r"different run config \(fields train.lr\)"):
        prepare_sweep(SweepSpec.from_dict({**TINY, "train": {**TINY["train"], "lr": 3e-4}}), root)
    plan = prepare_sweep(
        SweepSpec.from_dict({**TINY, "budget": {"n": [8, 16, 32], "seeds": [0]}}), root
    )
    assert len(plan.runs) == 6 and len(plan.pending()) == 2
    status = sweep_status(root)
    assert status.counts == {"done": 4, "pending": 2}
    prepare_sweep(SweepSpec.from_dict(TINY), root)  # back to the original plan


def test_failed_run_is_recorded_and_retried(tmp_path, monkeypatch):
    spec = {**TINY, "difficulty": {"centers": [2]}, "budget": {"n": [8], "seeds": [0]}}
    plan = prepare_sweep(SweepSpec.from_dict(spec), tmp_path)
    run = plan.runs[0]
    import fits.sweep._train as train_mod

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(train_mod, "train_one", boom)
    res = execute_run(tmp_path, run)
    assert res["status"] == "failed" and "disk full" in res["error"]
    assert json.loads((tmp_path / "failed" / f"{run.run_id}.json").read_text())["error"] == (
        "RuntimeError: disk full"
    )
    assert not any((tmp_path / "runs").iterdir())  # nothing half-written
    assert sweep_status(tmp_path).counts == {"failed": 1}
    monkeypatch.undo()
    assert execute_run(tmp_path, run)["status"] == "done"
    assert not (tmp_path / "failed" / f"{run.run_id}.json").exists()
    assert sweep_status(tmp_path).counts == {"done": 1}


def test_stale_temporary_folders_of_dead_processes_are_removed(tmp_path):
    plan = prepare_sweep(SweepSpec.from_dict(TINY), tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(proc.stdout)
    import socket

    host = socket.gethostname().replace(".", "_")
    first, second = plan.runs[0].run_id, plan.runs[1].run_id
    stale = tmp_path / "runs" / f".{first}.{host}-{dead}.tmp"
    live = tmp_path / "runs" / f".{second}.{host}-{os.getpid()}.tmp"
    stale.mkdir()
    live.mkdir()
    status = sweep_status(tmp_path)  # cleans first, then reports
    assert status.counts == {"running": 1, "pending": 3}
    assert [r["state"] for r in status.rows if r["run_id"] == second] == ["running"]
    assert not stale.exists() and live.exists()
    assert clean_stale_tmp(tmp_path) == []


@pytest.mark.slow
def test_kill_mid_sweep_then_resume_loses_and_duplicates_nothing(tmp_path):
    spec_file = tmp_path / "spec.json"
    spec = {**TINY, "difficulty": {"centers": [2, 4, 6]}, "budget": {"n": [8, 16], "seeds": [0]}}
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    root = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fits.cli.main",
            "sweep",
            "run",
            str(spec_file),
            "--out",
            str(root),
            "--json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            done = (
                [p for p in (root / "runs").glob("*") if not p.name.startswith(".")]
                if (root / "runs").is_dir()
                else []
            )
            if len(done) >= 2:
                break
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no run finished within the time limit")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = {
        p.name: p.stat().st_ino for p in (root / "runs").iterdir() if not p.name.startswith(".")
    }
    assert 2 <= len(finished) < 6
    for name in finished:
        assert (root / "runs" / name / "run_meta.json").is_file()
    status = sweep_status(root)
    assert status.counts.get("done") == len(finished)
    result = run_sweep(spec, root)
    assert result.skipped == len(finished) and result.ran == 6 - len(finished)
    after = {p.name: p.stat().st_ino for p in (root / "runs").iterdir()}
    assert len(after) == 6 and not any(name.startswith(".") for name in after)
    assert all(after[name] == ino for name, ino in finished.items())  # not re-run
    assert len(load_plan(root).runs) == 6
    assert len(fits.load_runs(root)) == 6


ONE_RUN = {**TINY, "difficulty": {"centers": [2]}, "budget": {"n": [8], "seeds": [0]}}


def test_second_sweep_on_a_busy_folder_is_refused_naming_the_holder(tmp_path):
    """Two `sweep run` on one folder used to both train every run (issue 15, item 10)."""
    from pacbound.exceptions import TradeoffError

    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(ONE_RUN), encoding="utf-8")
    root = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fits.cli.main", "sweep", "run", str(spec_file), "--out",
         str(root), "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while not list((root / "runs").glob(".*.tmp")) if (root / "runs").is_dir() else True:
            assert proc.poll() is None, "the first sweep ended before the second started"
            assert time.time() < deadline, "the first sweep never started a run"
            time.sleep(0.05)
        with pytest.raises(TradeoffError) as info:
            run_sweep(ONE_RUN, root)
        message = str(info.value)
        assert f"pid {proc.pid}" in message and "\n" not in message
        assert "already running" in message
        from typer.testing import CliRunner

        from fits.cli.main import app

        res = CliRunner().invoke(app, ["sweep", "run", str(spec_file), "--out", str(root)])
        assert res.exit_code == 2 and "Traceback" not in res.output
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {proc.pid}" in lines[0], res.stderr
        assert proc.poll() is None  # the holder was still running throughout
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    """A lock left by a killed sweep on this host does not block the next one (item 10)."""
    import socket

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    root = tmp_path / "sweep"
    root.mkdir()
    (root / ".sweep.lock").write_text(
        json.dumps({"pid": int(proc.stdout), "host": socket.gethostname(), "started": 0})
    )
    with pytest.warns(UserWarning, match=f"stale lock.*pid {int(proc.stdout)}"):
        result = run_sweep(ONE_RUN, root)
    assert result.ran == 1 and not (root / ".sweep.lock").exists()


def test_a_lock_of_a_live_process_on_another_host_is_refused(tmp_path):
    """A lock whose holder cannot be checked from here is not taken over (item 10)."""
    from pacbound.exceptions import TradeoffError

    root = tmp_path / "sweep"
    root.mkdir()
    (root / ".sweep.lock").write_text(
        json.dumps({"pid": 4242, "host": "some-other-host", "started": 0})
    )
    with pytest.raises(TradeoffError, match="pid 4242 on host some-other-host"):
        run_sweep(ONE_RUN, root)
    assert not (root / "runs").exists()
