"""One streaming pass over paired tensors, in memory bounded by a chunk budget.

Every job compares an element range of a fine-tuned tensor with the base (or with a prior
centre of 0) and yields the sufficient statistics from which every Gaussian KL, for any σ, is a
closed form (the weight-statistics table)::

    numel, sq_delta = sum (w_ft - w_base)^2, sq_base = sum w_base^2, sq_finetuned = sum w_ft^2,
    max_abs_delta = max |w_ft - w_base|, n_zero_delta = #{w_ft == w_base}

A job is cut into chunks of at most ``chunk_bytes / 4`` elements (rows kept whole when the
job transforms rows, as DoRA does). Each chunk is upcast into a float32 buffer that is
allocated once and reused; sums of squares are taken per row of 4096 elements in float32
(relative error ~1e-7, against 1e-3 for one fp32 reduction over a huge tensor) and
accumulated in float64; the delta is formed in place (``sub_``). A non-finite sum triggers a
diagnosis that names the tensor holding NaN/inf, or, when the weights are finite but their
squares overflow float32, a float64 recomputation of that job.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from measurement._checkpoint import TensorInfo
from measurement._checkpoint_reader import CheckpointReader
from measurement.exceptions import NonFiniteWeightError

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_CHUNK_BYTES", "JobStats", "Segment", "StreamJob", "run_jobs"]

DEFAULT_CHUNK_BYTES = 256 * 2**20
_ROW = 4096  # elements per float32 partial sum of squares


@dataclass(frozen=True)
class Segment:
    """Elements ``[start, stop)`` of a tensor served by ``reader``."""

    reader: CheckpointReader
    info: TensorInfo
    start: int
    stop: int

    @property
    def numel(self) -> int:
        return self.stop - self.start

    def nbytes(self, e0: int, e1: int) -> int:
        """Bytes read for job elements ``[e0, e1)``."""
        return (e1 - e0) * self.info.itemsize


class RowTransform(abc.ABC):
    """Builds fine-tuned rows from base rows on the compute device (DoRA, adapters).

    Subclasses implement :meth:`apply`, which receives the fine-tuned chunk (filled from the
    job's fine-tuned segment, or uninitialised when the job has none) and the base chunk,
    both float32 of shape ``[rows, row_elems]``, and writes the fine-tuned values in place.
    """

    #: True when :meth:`apply` records side results (a resumed job would lose them).
    stateful = False

    def prepare(self, device: torch.device) -> None:
        """Move any small tensors the transform needs to ``device`` (called once per job).

        The default has nothing to move.
        """
        return None

    @abc.abstractmethod
    def apply(
        self, ft: torch.Tensor, base: torch.Tensor | None, row0: int, row1: int
    ) -> torch.Tensor | None:
        """Write the fine-tuned rows into ``ft``; optionally return the delta itself.

        Returning the delta (formed directly, e.g. s·B·A) avoids the cancellation of
        ``(W + ΔW) - W`` in float32; returning None lets the accumulator subtract.
        """


@dataclass
class StreamJob:
    """One row of the statistics table, computed by streaming.

    Attributes
    ----------
    name, kind : str
        Row name and kind (full, new_rows, dora, modules_to_save, lora).
    numel : int
        Elements compared.
    finetuned, base : Segment or None
        Where to read each side; a missing base means a prior centre of 0; a missing
        fine-tuned side requires a ``transform`` that builds it.
    row_elems : int
        Chunks hold whole rows of this many elements (1: any split).
    transform : RowTransform or None
        Builds or modifies the fine-tuned chunk from the base chunk.
    meta : dict
        Extra columns carried to the table (dtypes, notes).
    """

    name: str
    kind: str
    numel: int
    finetuned: Segment | None
    base: Segment | None
    row_elems: int = 1
    transform: RowTransform | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes this job reads from the checkpoints."""
        return sum(s.nbytes(0, self.numel) for s in (self.finetuned, self.base) if s is not None)


@dataclass(frozen=True)
class JobStats:
    """Sufficient statistics of one job (see the module docstring)."""

    name: str
    kind: str
    numel: int
    sq_delta: float
    sq_base: float
    sq_finetuned: float
    max_abs_delta: float
    n_zero_delta: int
    meta: dict[str, Any] = field(default_factory=dict)


def chunk_ranges(numel: int, row_elems: int, chunk_elems: int) -> Iterator[tuple[int, int]]:
    """Element ranges ``[e0, e1)`` covering ``numel``, whole rows, at most the budget."""
    step = max(row_elems, (chunk_elems // row_elems) * row_elems)
    for e0 in range(0, numel, step):
        yield e0, min(numel, e0 + step)


def sum_squares(x: torch.Tensor) -> torch.Tensor:
    """``sum(x**2)`` as a float64 0-dim tensor: float32 per row of 4096, float64 across."""
    import torch

    n = x.numel()
    if x.dtype == torch.float64:
        return torch.dot(x, x) if n <= _ROW else x.square().sum()
    full = (n // _ROW) * _ROW
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    if full:
        total = torch.linalg.vector_norm(x[:full].view(-1, _ROW), dim=1).double().square().sum()
    if full < n:
        tail = x[full:].double()
        total = total + torch.dot(tail, tail)
    return total


class Accumulator:
    """Running statistics of one job on the compute device (float64 sums)."""

    def __init__(self, device: torch.device):
        import torch

        self.sums = torch.zeros(3, dtype=torch.float64, device=device)  # ft, base, delta
        self.max_abs = torch.zeros((), dtype=torch.float64, device=device)
        self.nonzero = torch.zeros((), dtype=torch.int64, device=device)
        self.numel = 0

    def add(
        self, ft: torch.Tensor, base: torch.Tensor | None, delta: torch.Tensor | None = None
    ) -> None:
        """Fold one chunk in; without ``delta``, ``ft`` is overwritten with ``ft - base``."""
        import torch

        self.numel += ft.numel()
        if ft.numel() == 0:
            return
        self.sums[0] += sum_squares(ft)
        if base is not None:
            self.sums[1] += sum_squares(base)
        if delta is None:
            delta = ft.sub_(base) if base is not None else ft
        delta = delta.reshape(-1)
        self.sums[2] += sum_squares(delta)
        lo, hi = torch.aminmax(delta)
        self.max_abs = torch.maximum(self.max_abs, torch.maximum(hi, -lo).double())
        self.nonzero += torch.count_nonzero(delta)

    def result(self, job: StreamJob) -> JobStats:
        sums = self.sums.tolist()
        return JobStats(
            name=job.name,
            kind=job.kind,
            numel=job.numel,
            sq_finetuned=sums[0],
            sq_base=sums[1],
            sq_delta=sums[2],
            max_abs_delta=float(self.max_abs),
            n_zero_delta=self.numel - int(self.nonzero),
            meta=dict(job.meta),
        )


class CpuStager:
    """Upcast chunks into reused CPU buffers (``copy_`` from the zero-copy file view)."""

    def __init__(self, chunk_elems: int, dtype: torch.dtype | None = None):
        import torch

        self.device = torch.device("cpu")
        self.dtype = dtype or torch.float32
        self.chunk_elems = chunk_elems
        self._ft: torch.Tensor | None = None
        self._base: torch.Tensor | None = None

    def _buffer(self, which: str, n: int) -> torch.Tensor:
        import torch

        buf = getattr(self, which)
        if buf is None or buf.numel() < n:
            # sized to the largest chunk seen, never above the budget (except one whole row)
            size = max(n, min(self.chunk_elems, n * 2))
            buf = torch.empty(size, dtype=self.dtype)
            setattr(self, which, buf)
        return buf[:n]

    def load(self, job: StreamJob, e0: int, e1: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ft = self._buffer("_ft", e1 - e0)
        if job.finetuned is not None:
            seg = job.finetuned
            ft.copy_(seg.reader.view(seg.info, seg.start + e0, seg.start + e1))
            seg.reader.release(seg.info, seg.start + e0, seg.start + e1)
        base = None
        if job.base is not None:
            seg = job.base
            base = self._buffer("_base", e1 - e0)
            base.copy_(seg.reader.view(seg.info, seg.start + e0, seg.start + e1))
            seg.reader.release(seg.info, seg.start + e0, seg.start + e1)
        return ft, base

    def finish(self) -> None:
        """Nothing is in flight on the CPU."""


ProgressFn = Callable[[int], None]


def _prefetch(job: StreamJob, e0: int, e1: int) -> None:
    for seg in (job.finetuned, job.base):
        if seg is not None:
            seg.reader.prefetch(seg.info, seg.start + e0, seg.start + e1)


def _run_one(job: StreamJob, stager: Any, chunk_elems: int, advance: ProgressFn) -> JobStats:
    acc = Accumulator(stager.device)
    if job.transform is not None:
        job.transform.prepare(stager.device)
    ranges = list(chunk_ranges(job.numel, job.row_elems, chunk_elems))
    for i, (e0, e1) in enumerate(ranges):
        if i + 1 < len(ranges):
            _prefetch(job, *ranges[i + 1])
        ft, base = stager.load(job, e0, e1)
        delta = None
        if job.transform is not None:
            rows = (e1 - e0) // job.row_elems
            shape = (rows, job.row_elems)
            delta = job.transform.apply(
                ft.view(shape),
                None if base is None else base.view(shape),
                e0 // job.row_elems,
                e0 // job.row_elems + rows,
            )
        acc.add(ft, base, delta)
        advance(sum(s.nbytes(e0, e1) for s in (job.finetuned, job.base) if s is not None))
    return acc.result(job)


def _count_bad(seg: Segment, chunk_elems: int) -> tuple[int, int, int]:
    import torch

    nan = inf = 0
    first = -1
    for e0, e1 in chunk_ranges(seg.numel, 1, chunk_elems):
        view = seg.reader.view(seg.info, seg.start + e0, seg.start + e1)
        isnan, isinf = torch.isnan(view), torch.isinf(view)
        k_nan, k_inf = int(isnan.sum()), int(isinf.sum())
        if (k_nan or k_inf) and first < 0:
            first = seg.start + e0 + int(torch.nonzero(isnan | isinf)[0, 0])
        nan, inf = nan + k_nan, inf + k_inf
    return nan, inf, first


def diagnose_non_finite(job: StreamJob, chunk_elems: int) -> JobStats:
    """Name the tensor holding NaN/inf, or recompute the job in float64 when none does."""
    import torch

    for side, seg in (("fine-tuned", job.finetuned), ("base", job.base)):
        if seg is None:
            continue
        nan, inf = 0, 0
        nan, inf, first = _count_bad(seg, chunk_elems)
        if nan or inf:
            raise NonFiniteWeightError(
                f"Tensor `{seg.info.name}` in `{seg.info.file}` ({side}) has {nan} NaN and "
                f"{inf} infinite values (first at flat index {first}); weights must be finite."
            )
    stats = _run_one(job, CpuStager(chunk_elems // 2, torch.float64), chunk_elems // 2, _noop)
    values = (stats.sq_delta, stats.sq_base, stats.sq_finetuned, stats.max_abs_delta)
    if not all(math.isfinite(v) for v in values):
        raise NonFiniteWeightError(
            f"The fine-tuned values of `{job.name}` ({job.kind}), computed from "
            f"{job.meta.get('source', 'the adapter')}, are not finite; the adapter may be broken."
        )
    return stats


def _noop(_: int) -> None:
    return None


@dataclass
class StreamReport:
    """What a pass cost: bytes read, seconds, GB/s, the device and the chunk size."""

    bytes_read: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    chunk_elems: int = 0

    @property
    def gb_per_s(self) -> float:
        return self.bytes_read / self.seconds / 1e9 if self.seconds > 0 else float("nan")


def run_jobs(
    jobs: Sequence[StreamJob],
    *,
    stager: Any,
    chunk_elems: int,
    advance: ProgressFn = _noop,
    report: StreamReport | None = None,
) -> Iterator[JobStats]:
    """Stream every job once and yield its statistics, in order.

    Parameters
    ----------
    jobs : sequence of StreamJob
        What to compare; iterate them in file order so reads are sequential.
    stager : CpuStager or a device stager
        Fills float32 buffers on the compute device from file views.
    chunk_elems : int
        Elements per chunk (per side).
    advance : callable
        Called with the bytes read after each chunk (progress bar).
    report : StreamReport, optional
        Filled with bytes read and seconds spent.
    """
    start = time.perf_counter()
    for job in jobs:
        stats = _run_one(job, stager, chunk_elems, advance)
        if report is not None:
            report.bytes_read += job.nbytes
        checked = (stats.sq_delta, stats.sq_base, stats.sq_finetuned, stats.max_abs_delta)
        if not all(math.isfinite(v) for v in checked):
            stats = diagnose_non_finite(job, chunk_elems)
        yield stats
    stager.finish()
    if report is not None:
        report.seconds += time.perf_counter() - start
