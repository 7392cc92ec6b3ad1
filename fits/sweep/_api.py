"""``run_sweep``: prepare a sweep folder, run what is missing, report what happened."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fits.sweep._spec import SweepSpec, load_spec

__all__ = ["SweepResult", "run_sweep"]


@dataclass(frozen=True)
class SweepResult:
    """Outcome of one :func:`run_sweep` call.

    Attributes
    ----------
    root : str
        The sweep folder (``tradeoff fit ROOT`` reads it).
    planned, ran, skipped, failed : int
        Planned runs; runs executed now; runs already complete; runs that failed now.
    seconds : float
        Wall time of the call.
    results : tuple of dict
        Per-run results of this call (``run_id, status, seconds`` and ``error`` on failure).
    """

    root: str
    planned: int
    ran: int
    skipped: int
    failed: int
    seconds: float
    results: tuple[dict, ...]

    def __str__(self) -> str:
        text = (
            f"sweep {self.root}: {self.planned} planned, {self.ran} ran now, {self.skipped} "
            f"already done, {self.failed} failed ({self.seconds:.1f} s)"
        )
        errors = [r for r in self.results if r["status"] == "failed"]
        for r in errors[:5]:
            text += f"\n  failed {r['run_id']}: {r.get('error')}"
        return text

    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "planned": self.planned,
            "ran": self.ran,
            "skipped": self.skipped,
            "failed": self.failed,
            "seconds": self.seconds,
            "results": list(self.results),
        }


def _base_ready(spec: SweepSpec) -> bool:
    """Whether the spec's base needs no pre-training or conversion."""
    from fits.sweep._bases import pretrain_config_for
    from fits.synthetic._model import cache_root, find_synthetic_base

    kind = spec["base.kind"]
    if kind == "synthetic":
        return find_synthetic_base(pretrain_config_for(spec)) is not None
    if kind == "smollm2":
        from fits.sweep._bases import SMOLLM2_NAME

        return (cache_root() / "bases" / SMOLLM2_NAME / "config.json").is_file()
    return True


def run_sweep(
    spec: SweepSpec | dict | str | Path,
    out: str | Path,
    *,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> SweepResult:
    """Run every missing run of ``spec`` into the sweep folder ``out``.

    Parameters
    ----------
    spec : SweepSpec, dict or path
        The sweep spec (a path is read with :func:`~fits.sweep._spec.load_spec`).
    out : path
        The sweep folder; created if needed; a rerun resumes it.
    backend : {"local", "ray"}
    address : str, optional
        Ray cluster address to join (default: start a local cluster).
    workers : int, optional
        Local: parallel worker processes (default: ``resources.workers``, the GPU count, or
        1). Ray: CPUs of the local cluster it starts.
    progress : bool
        Show a rich progress bar.

    Raises
    ------
    SweepLockedError
        Another process is running this sweep folder (its pid and host are named).
    """
    from fits.sweep._backends import check_backend
    from fits.sweep._runner import sweep_lock

    t0 = time.perf_counter()
    check_backend(backend, address)
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = SweepSpec.from_dict(spec)
    with sweep_lock(out):
        return _run_locked(spec, out, t0, backend, address, workers, progress)


def _run_locked(
    spec: SweepSpec,
    out: str | Path,
    t0: float,
    backend: str,
    address: str | None,
    workers: int | None,
    progress: bool,
) -> SweepResult:
    """The body of :func:`run_sweep`, run while this process holds the sweep folder's lock."""
    from fits.sweep._backends import run_with_backend
    from fits.sweep._runner import clean_stale_tmp, is_complete, prepare_sweep

    plan = prepare_sweep(spec, out)
    clean_stale_tmp(plan.root)
    # Resolve (and if needed pre-train or convert) the base once, before any worker starts.
    from fits.sweep._bases import resolve_base

    if progress and not _base_ready(spec):
        from rich.console import Console

        with Console(stderr=True).status(
            "preparing the base model (pre-training or converting it once; it is then cached)"
        ):
            resolve_base(spec)
    else:
        resolve_base(spec)
    todo = [r for r in plan.runs if not is_complete(plan.root, r.run_id)]
    skipped = len(plan.runs) - len(todo)
    results: list[dict] = []
    if todo:
        from pacbound.support import progress_bar

        with progress_bar(f"sweep {spec.name}", len(todo), enabled=progress) as advance:

            def hook(res: dict) -> None:
                mark = "x" if res["status"] == "failed" else "ok"
                advance(1, note=f"  {mark} {res['run_id']} ({res['seconds']:.1f} s)")

            results = run_with_backend(
                plan, todo, backend, address=address, workers=workers, on_result=hook
            )
    failed = sum(r["status"] == "failed" for r in results)
    ran = sum(r["status"] == "done" for r in results)
    skipped += sum(r["status"] == "skipped" for r in results)
    return SweepResult(
        str(plan.root),
        len(plan.runs),
        ran,
        skipped,
        failed,
        time.perf_counter() - t0,
        tuple(results),
    )
