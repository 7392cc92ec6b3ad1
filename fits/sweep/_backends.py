"""Where the runs of a sweep execute: locally (sequential, or one worker per GPU/core) or on Ray.

- ``local``: with one worker the runs execute in this process, one after the other. With
  several workers (``resources.workers``, default: the number of GPUs, else 1) they execute in
  a pool of spawned processes, each pinned to one GPU through ``CUDA_VISIBLE_DEVICES`` when
  there are GPUs, with ``resources.threads_per_run`` torch threads. Workers exit when the
  sweep process dies, so a killed sweep leaves only its in-flight temporary folders.
- ``ray``: ``ray.init()`` starts a local cluster (its workers at normal priority rather than
  Ray's default niceness 15), or joins the one at ``address``; every run is a Ray task that
  asks for one GPU when the runs use CUDA, else ``threads_per_run`` CPUs.
  The sweep folder must be on a filesystem that every node sees.

Both return the per-run results of :func:`fits.sweep._runner.execute_run` and call
``on_result`` as each run finishes (for progress bars).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fits.sweep._plan import PlannedRun
from fits.sweep._runner import SweepPlan, execute_run
from pacbound.exceptions import InvalidParameterError

__all__ = ["BACKENDS", "check_backend", "run_local", "run_ray", "run_with_backend"]

BACKENDS = ("local", "ray")
ResultHook = Callable[[dict], None]


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def _init_worker(parent: int, threads: int, gpu_queue) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    import torch

    torch.set_num_threads(threads)


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover
        return 0


def _order(runs: list[PlannedRun]) -> list[PlannedRun]:
    """Longest runs first (most steps, then largest n), which balances parallel workers."""
    return sorted(runs, key=lambda r: (-r.steps, -r.n, -r.difficulty, r.seed))


def run_local(
    plan: SweepPlan,
    runs: list[PlannedRun],
    *,
    workers: int | None = None,
    on_result: ResultHook | None = None,
) -> list[dict]:
    """Execute ``runs`` on this machine (see module docstring)."""
    spec = plan.spec
    threads = spec["resources.threads_per_run"]
    use_gpu = spec["resources.device"] != "cpu" and _gpu_count() > 0
    if workers is None:
        workers = spec["resources.workers"] or (_gpu_count() if use_gpu else 1)
    workers = max(1, min(workers, len(runs) or 1))
    results = []
    if workers == 1:
        import torch

        torch.set_num_threads(threads)
        for run in _order(runs):
            res = execute_run(plan.root, run)
            results.append(res)
            if on_result:
                on_result(res)
        return results
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")
    gpu_queue = None
    if use_gpu:
        gpu_queue = ctx.Queue()
        for i in range(workers):
            gpu_queue.put(i % _gpu_count())
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(os.getpid(), threads, gpu_queue),
    ) as pool:
        futures = [pool.submit(execute_run, str(plan.root), r.to_dict()) for r in _order(runs)]
        for fut in as_completed(futures):
            res = fut.result()
            results.append(res)
            if on_result:
                on_result(res)
    return results


def _ray_execute(root: str, run: dict, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    return execute_run(root, run)


def run_ray(
    plan: SweepPlan,
    runs: list[PlannedRun],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    on_result: ResultHook | None = None,
) -> list[dict]:
    """Execute ``runs`` as Ray tasks (a local cluster by default, or the one at ``address``)."""
    try:
        import ray
    except ImportError:
        raise InvalidParameterError(
            "`backend` 'ray' needs the optional extra: pip install 'sft-tradeoff[ray]'."
        ) from None
    spec = plan.spec
    threads = spec["resources.threads_per_run"]
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"include_dashboard": False, "log_to_driver": False}
        if address:
            ray.init(address=address, **kwargs)
        else:
            # Ray starts its workers at niceness 15, which starves the runs on a busy machine;
            # the runs are the work here, so the local cluster keeps the normal priority
            # (set RAY_worker_niceness yourself to choose otherwise).
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(num_cpus=num_cpus, **kwargs)
    try:
        use_gpu = spec["resources.device"] == "cuda" or (
            spec["resources.device"] == "auto" and ray.cluster_resources().get("GPU", 0) > 0
        )
        resources = {"num_gpus": 1, "num_cpus": 1} if use_gpu else {"num_cpus": threads}
        remote = ray.remote(**resources)(_ray_execute)
        root = str(Path(plan.root).resolve())
        pending = {remote.remote(root, r.to_dict(), threads): r for r in _order(runs)}
        results = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                res = ray.get(ref)
                results.append(res)
                if on_result:
                    on_result(res)
        return results
    finally:
        if started_here:
            ray.shutdown()


def check_backend(backend: str, address: str | None = None) -> None:
    """Refuse an unknown backend, or an address without Ray, before any work starts."""
    if backend not in BACKENDS:
        raise InvalidParameterError(
            f"`backend` must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}."
        )
    if address and backend != "ray":
        raise InvalidParameterError(f"`address` needs --backend ray; got backend {backend!r}.")


def run_with_backend(
    plan: SweepPlan,
    runs: list[PlannedRun],
    backend: str = "local",
    *,
    address: str | None = None,
    workers: int | None = None,
    on_result: ResultHook | None = None,
) -> list[dict]:
    """Dispatch to :func:`run_local` or :func:`run_ray`."""
    check_backend(backend, address)
    if backend == "ray":
        return run_ray(plan, runs, address=address, num_cpus=workers, on_result=on_result)
    return run_local(plan, runs, workers=workers, on_result=on_result)
