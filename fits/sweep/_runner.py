"""Resumable sweep folders: plan once, run each cell into a temporary folder, rename when done.

Layout of a sweep folder (docs/contracts.md, "Sweep run folders")::

    <sweep>/sweep.json                 the validated spec (canonical, defaults filled)
    <sweep>/plan.json                  the planned runs of the latest invocation
    <sweep>/runs/<run_id>/             complete runs only
    <sweep>/runs/.<run_id>.<host>-<pid>.tmp/   a run in flight
    <sweep>/failed/<run_id>.json       the error of a run that failed (cleared on success)
    <sweep>/.sweep.lock                held by the process running the sweep (pid, host)

A run is complete when its folder exists under ``runs/`` with ``run_meta.json`` (written
last, before the rename). A rerun skips complete runs, retries failed ones and removes
temporary folders left by dead processes on this host, so a killed sweep loses at most the runs
that were in flight. If two processes finish the same run, the first rename wins and the other
copy is discarded, so no run is duplicated.

One process at a time runs a sweep folder: :func:`sweep_lock` holds ``.sweep.lock`` (an
exclusive ``flock`` on it, with the holder's pid and host written inside) and a second
``run_sweep`` on the folder is refused with the holder named. The kernel drops the ``flock``
when its process dies, so the lock of a killed sweep on this host is taken over (with a
warning); a lock written by another host is refused, since its holder cannot be checked here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fits.sweep._plan import PlannedRun, plan_runs
from fits.sweep._spec import SpecError, SweepSpec
from pacbound.exceptions import TradeoffError
from pacbound.support import write_json

__all__ = [
    "SweepLockedError",
    "SweepPlan",
    "clean_stale_tmp",
    "execute_run",
    "is_complete",
    "load_plan",
    "prepare_sweep",
    "sweep_lock",
]

SPEC_FILE = "sweep.json"
PLAN_FILE = "plan.json"
LOCK_FILE = ".sweep.lock"


class SweepLockedError(TradeoffError):
    """Another process is running the same sweep folder."""


@dataclass(frozen=True)
class SweepPlan:
    """A prepared sweep: its folder, spec and planned runs.

    Attributes
    ----------
    root : Path
    spec : SweepSpec
    runs : tuple of PlannedRun
    """

    root: Path
    spec: SweepSpec
    runs: tuple[PlannedRun, ...]

    def pending(self) -> list[PlannedRun]:
        """Planned runs without a complete folder."""
        return [r for r in self.runs if not is_complete(self.root, r.run_id)]

    def __str__(self) -> str:
        done = len(self.runs) - len(self.pending())
        return f"{self.root}: {len(self.runs)} planned runs, {done} done"


def is_complete(root: Path, run_id: str) -> bool:
    """Whether ``<root>/runs/<run_id>`` is a finished run folder."""
    return (Path(root) / "runs" / run_id / "run_meta.json").is_file()


def _host_tag() -> str:
    return socket.gethostname().replace(".", "_")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_holder(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _locked_error(root: Path, holder: dict) -> SweepLockedError:
    pid, host = holder.get("pid", "?"), holder.get("host", "?")
    since = holder.get("started")
    when = (
        f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
        if isinstance(since, (int, float)) and since > 0
        else ""
    )
    return SweepLockedError(
        f"Sweep folder `{root}` is already running: `{root / LOCK_FILE}` is held by pid {pid} "
        f"on host {host}{when}; wait for it to finish (`tradeoff sweep status {root}`), or, if "
        "that process is gone, remove the lock file."
    )


@contextlib.contextmanager
def sweep_lock(root: str | Path) -> Iterator[Path]:
    """Hold the sweep folder's lock for the block; raise :class:`SweepLockedError` if taken.

    The lock is an exclusive, non-blocking ``flock`` on ``<root>/.sweep.lock``, which holds
    ``{"pid", "host", "started"}`` of the holder. A lock file whose ``flock`` is free was left
    by a process that died: on this host it is taken over (a ``UserWarning`` names the dead
    pid); from another host it is refused, since ``flock`` may not reach across hosts and the
    holder cannot be checked from here.
    """
    import fcntl

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _locked_error(root, _read_holder(path)) from None
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file between our open and our flock: retry
    try:
        holder = _read_holder(path)
        pid, host = holder.get("pid"), holder.get("host")
        if holder and host != socket.gethostname():
            raise _locked_error(root, holder)
        if holder:
            state = "dead" if not (isinstance(pid, int) and _pid_alive(pid)) else "not holding it"
            warnings.warn(
                f"Sweep folder `{root}`: taking over the stale lock of pid {pid} ({state}) "
                f"on this host.",
                UserWarning,
                stacklevel=3,
            )
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        os.close(fd)


def clean_stale_tmp(root: Path) -> list[str]:
    """Remove temporary run folders left by dead processes on this host; return their names."""
    runs = Path(root) / "runs"
    removed = []
    if not runs.is_dir():
        return removed
    host = _host_tag()
    for path in runs.iterdir():
        name = path.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        owner = name[: -len(".tmp")].rsplit(".", 1)[-1]
        tag, _, pid = owner.rpartition("-")
        if tag == host and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed


def prepare_sweep(spec: SweepSpec, out: str | Path, *, write: bool = True) -> SweepPlan:
    """Create (or reopen) the sweep folder ``out`` for ``spec`` and plan its runs.

    A folder started with another per-run config is refused (its runs would not be
    comparable); extending the grid (more budgets, seeds, difficulties or modes) is allowed.
    With ``write=False`` (a dry run) the same checks and plan are made but nothing is
    written: the folder is not created.
    """
    from fits.sweep._bases import base_fingerprint
    from fits.sweep._tasks import make_task

    root = Path(out)
    if write:
        root.mkdir(parents=True, exist_ok=True)
    spec_file = root / SPEC_FILE
    if spec_file.is_file():
        old = SweepSpec.from_dict(json.loads(spec_file.read_text()), str(spec_file))
        if old.hash_payload() != spec.hash_payload():
            changed = sorted(_diff_paths(old.hash_payload(), spec.hash_payload()))
            raise SpecError(
                f"{spec_file}: this sweep folder was started with a different run config "
                f"(fields {', '.join(changed)}); use a new --out folder, or the same spec."
            )
    task = make_task(spec)
    biggest = max(spec["budget.n"])
    for diff in task.difficulties():
        pool = diff.info.get("pool_size")
        if pool is not None and biggest > pool:
            raise SpecError(
                f"{spec.source}: `budget.n` = {biggest} exceeds the {pool} training rows of "
                f"difficulty bin {diff.label} [{diff.lo:g}, {diff.hi:g})."
            )
    runs = plan_runs(spec, task.difficulties(), base_fingerprint(spec), task.fingerprint())
    if not write:
        return SweepPlan(root, spec, tuple(runs))
    write_json(spec_file, spec.data)
    write_json(root / PLAN_FILE, {"runs": [r.to_dict() for r in runs]})
    (root / "runs").mkdir(exist_ok=True)
    return SweepPlan(root, spec, tuple(runs))


def _diff_paths(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff_paths(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out


def load_plan(root: str | Path) -> SweepPlan:
    """Reopen a prepared sweep folder (spec and plan as written by :func:`prepare_sweep`)."""
    root = Path(root)
    spec_file = root / SPEC_FILE
    if not spec_file.is_file():
        raise SpecError(f"{root}: not a sweep folder (no {SPEC_FILE}).")
    spec = SweepSpec.from_dict(json.loads(spec_file.read_text()), str(spec_file))
    plan_file = root / PLAN_FILE
    runs = ()
    if plan_file.is_file():
        runs = tuple(PlannedRun.from_dict(r) for r in json.loads(plan_file.read_text())["runs"])
    return SweepPlan(root, spec, runs)


# Per-process cache of the objects every run of a sweep shares (task, test set, base folder).
_CONTEXT: dict[str, tuple] = {}


def _context(plan: SweepPlan):
    key = str(plan.root.resolve()) + "\n" + plan.spec.to_json()
    if key not in _CONTEXT:
        from fits.sweep._bases import resolve_base
        from fits.sweep._tasks import make_task

        task = make_task(plan.spec)
        base = resolve_base(plan.spec)
        diffs = {d.label: d for d in task.difficulties()}
        _CONTEXT[key] = (task, task.test_records(), base, diffs)
    return _CONTEXT[key]


def _run_meta(plan: SweepPlan, run: PlannedRun, difficulty, base: Path, summary: dict) -> dict:
    from fits.synthetic._pretrain import TRAINING_LIBRARIES
    from pacbound.support import library_versions

    spec = plan.spec
    return {
        "run_id": run.run_id,
        "difficulty": run.difficulty,
        "difficulty_label": run.difficulty_label,
        "n": run.n,
        "n_tokens": summary["n_tokens"],
        "n_completion_tokens": summary["n_completion_tokens"],
        "seed": run.seed,
        "base_model": str(base),
        "base_kind": spec["base.kind"],
        "budget_mode": run.budget_mode,
        "epochs": run.epochs,
        "steps": summary["global_step"],
        "lr": spec["train.lr"],
        "batch_size": spec["train.batch_size"],
        "grad_accum": spec["train.grad_accum"],
        "finetune": spec["train.finetune"],
        "task": spec["task.kind"],
        "sweep": spec.name,
        "difficulty_info": difficulty.info,
        "timing": {
            k: summary[k]
            for k in (
                "train_seconds",
                "eval_seconds",
                "weight_stats_seconds",
                "total_seconds",
                "cpu_seconds",
            )
        },
        "device": summary["device"],
        "threads": summary["threads"],
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "versions": library_versions(TRAINING_LIBRARIES),
    }


def execute_run(root: str | Path, run: PlannedRun | dict) -> dict:
    """Run one planned run of the sweep at ``root`` unless it is already complete.

    Returns ``{"run_id", "status": "done"|"skipped"|"failed", "seconds", "error"?}``. A failure
    is recorded in ``failed/<run_id>.json`` and does not raise (the sweep goes on).
    """
    from fits.synthetic._pretrain import make_readable

    if isinstance(run, dict):
        run = PlannedRun.from_dict(run)
    plan = load_plan(root)
    root = plan.root
    final = root / "runs" / run.run_id
    if is_complete(root, run.run_id):
        return {"run_id": run.run_id, "status": "skipped", "seconds": 0.0}
    t0 = time.perf_counter()
    tmp = root / "runs" / f".{run.run_id}.{_host_tag()}-{os.getpid()}.tmp"
    failed = root / "failed" / f"{run.run_id}.json"
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        from fits.sweep._train import train_one

        task, test_records, base, diffs = _context(plan)
        difficulty = diffs[run.difficulty_label]
        summary = train_one(plan.spec, run, difficulty, task, base, tmp, test_records=test_records)
        write_json(tmp / "run_meta.json", _run_meta(plan, run, difficulty, base, summary))
        make_readable(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not is_complete(root, run.run_id):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished it first
        failed.unlink(missing_ok=True)
        return {
            "run_id": run.run_id,
            "status": "done",
            "seconds": time.perf_counter() - t0,
            "test_accuracy": summary["test_accuracy"],
        }
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        write_json(
            failed,
            {
                "run_id": run.run_id,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
                "host": socket.gethostname(),
                "time": time.time(),
            },
        )
        return {
            "run_id": run.run_id,
            "status": "failed",
            "seconds": time.perf_counter() - t0,
            "error": f"{type(exc).__name__}: {exc}",
        }
