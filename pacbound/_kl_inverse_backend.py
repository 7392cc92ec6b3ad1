"""Which code computes the interior of the kl inverses: the compiled kernel or numpy.

The algorithm of :mod:`pacbound._kl_inverse` exists twice: as numpy array passes (always
there) and as one fused C loop, ``pacbound._kl_inverse_kernel`` (built with the package when a
C compiler is present; ``setup.py``). Both round every operation alike and use the same
conservative final step, so both return a rigorous bound; they differ by the ``log`` they call
(numpy's vs the kernel's own fdlibm-style one), which moves results by a few ulp at most.

The kernel is used when it is built, and its elements are split over threads (the GIL is
released inside it) when there are at least ``MIN_ELEMENTS_PER_THREAD`` elements per thread.
Threads are started per call and joined before it returns, so no pool outlives a call (safe
to ``fork`` after). The thread count is the number of CPUs this process may run on, or the
environment variable ``PACBOUND_THREADS`` (a positive integer) when set.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Iterator
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from pacbound.exceptions import InvalidParameterError

__all__ = [
    "MIN_ELEMENTS_PER_THREAD",
    "available_cpus",
    "compiled_interior",
    "compiled_kernel",
    "kl_inverse_backend",
    "thread_count",
    "use_numpy_backend",
]

#: Below this many elements per thread, a thread costs more than it saves (~50 us to start).
MIN_ELEMENTS_PER_THREAD = 1 << 15
_THREADS_ENV = "PACBOUND_THREADS"


def _load_kernel() -> ModuleType | None:
    try:
        from pacbound import _kl_inverse_kernel
    except ImportError:  # not built (no C compiler at install time): numpy computes it all
        return None
    return _kl_inverse_kernel


_KERNEL = _load_kernel()
_numpy_forced = threading.local()


def compiled_kernel() -> ModuleType | None:
    """The compiled kernel module, or None when it is not built or the numpy path is forced."""
    if getattr(_numpy_forced, "on", False):
        return None
    return _KERNEL


@contextlib.contextmanager
def use_numpy_backend() -> Iterator[None]:
    """Within the block (in this thread), compute the inverses with the numpy passes.

    For comparisons and benchmarks of the two implementations; results are rigorous either way.
    """
    before = getattr(_numpy_forced, "on", False)
    _numpy_forced.on = True
    try:
        yield
    finally:
        _numpy_forced.on = before


def thread_count(n_elements: int) -> int:
    """Threads for ``n_elements``: the CPUs available (or ``PACBOUND_THREADS``), at most one
    per ``MIN_ELEMENTS_PER_THREAD`` elements, at least 1.

    Raises
    ------
    InvalidParameterError
        If ``PACBOUND_THREADS`` is set to anything but a positive integer.
    """
    raw = os.environ.get(_THREADS_ENV)
    if raw is not None and raw.strip() != "":
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if limit < 1:
            raise InvalidParameterError(
                f"environment variable {_THREADS_ENV}={raw!r} is not allowed: "
                "it must be a positive integer (the threads of the kl-inverse kernel)"
            )
    elif n_elements < 2 * MIN_ELEMENTS_PER_THREAD:
        return 1
    else:
        limit = available_cpus()
    return max(1, min(limit, n_elements // MIN_ELEMENTS_PER_THREAD))


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def kl_inverse_backend() -> str:
    """A one-line description of what computes ``kl_inv_upper``/``kl_inv_lower`` here.

    Examples
    --------
    >>> from pacbound import kl_inverse_backend
    >>> kl_inverse_backend().split()[0] in {"compiled", "numpy"}
    True
    """
    kernel = compiled_kernel()
    if kernel is None:
        reason = "forced" if _KERNEL is not None else "the compiled kernel is not built"
        return f"numpy (array passes; {reason})"
    threads = thread_count(1 << 62)
    return f"compiled kernel ({kernel.ISA} loops, up to {threads} thread(s))"


def compiled_interior(
    kernel: ModuleType,
    q: NDArray[np.float64],
    c: NDArray[np.float64],
    out: NDArray[np.float64],
    *,
    lower: bool,
) -> list[tuple[int, int]]:
    """Inverses by the compiled kernel, split over :func:`thread_count` threads.

    ``q``, ``c`` and ``out`` are contiguous 1-D float64 arrays of one length. Each thread's
    share is written block by block up to its first block with a pair outside the kernel's
    interior domain (an edge, NaN, an invalid value). Returns the ranges ``(start, stop)`` left
    unwritten, for the caller's masked path: empty when every pair was interior.
    """
    n = q.size
    threads = thread_count(n)
    if threads == 1:
        done = int(kernel.interior(q, c, out, lower))
        return [(done, n)] if done < n else []
    bounds = [n * i // threads for i in range(threads + 1)]
    written: dict[int, int] = {}
    errors: list[BaseException] = []

    def work(start: int, stop: int) -> None:
        try:
            written[start] = start + int(
                kernel.interior(q[start:stop], c[start:stop], out[start:stop], lower)
            )
        except BaseException as exc:  # re-raised in the calling thread below
            errors.append(exc)

    workers = [
        threading.Thread(target=work, args=(lo, hi), daemon=True)
        for lo, hi in itertools.pairwise(bounds[1:])
    ]
    for worker in workers:
        worker.start()
    work(0, bounds[1])  # this thread takes the first share
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return [(written[lo], hi) for lo, hi in itertools.pairwise(bounds) if written[lo] < hi]
