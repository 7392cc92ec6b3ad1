"""Choosing the compute device, and the double-buffered staging path for GPUs.

On a GPU, each chunk's raw bytes (in the checkpoint's own dtype) are copied from the file
mapping into one of two *reused* pinned host buffers, sent to the device with a non-blocking
copy on a side stream, and upcast to float32 there. While the GPU reduces chunk ``i``, the
CPU fills the other pinned buffer with chunk ``i + 1`` (double buffering); events order the
reuse of each buffer. Statistics stay on the device until a job ends, so the host waits once
per tensor, not once per chunk.

The same :class:`PipelinedStager` runs on the CPU (no pinning, no streams, no events), which
is how its bookkeeping is tested on machines without a GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from measurement.exceptions import DeviceUnavailableError
from pacbound.exceptions import InvalidParameterError

if TYPE_CHECKING:
    import torch

    from measurement._stream import StreamJob

__all__ = ["PipelinedStager", "cpu_threads", "make_stager", "resolve_device"]


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op CPU threads (None: leave as is).

    On a CPU shared with other jobs, waking a second thread for each of the pass's small
    reductions can cost more than it saves (measured: 10x slower at load 8 on 2 cores);
    one thread avoids that.
    """
    import torch

    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str | Any = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` (or a torch.device) into a torch.device.

    ``auto`` (or None) picks CUDA when ``torch.cuda.is_available()``, else the CPU. Used by
    the streaming pass and by :func:`measurement.load_causal_lm`.

    Raises
    ------
    InvalidParameterError
        An unknown device string.
    DeviceUnavailableError
        ``cuda`` requested on a machine without a usable CUDA device.
    """
    import torch

    if device is None:
        text = "auto"
    elif isinstance(device, torch.device):
        text = str(device)
    else:
        text = str(device).strip().lower()
    kind = text.split(":", 1)[0]
    if kind not in ("auto", "cpu", "cuda"):
        raise InvalidParameterError(f"`device` must be one of 'auto', 'cpu', 'cuda'; got {text!r}.")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"`device` must be 'auto' or 'cpu' on this machine (torch "
                f"{torch.__version__} sees no CUDA device); got {text!r}."
            )
        try:
            dev = torch.device(text)
        except (RuntimeError, TypeError):
            raise InvalidParameterError(
                f"`device` must be 'cuda' or 'cuda:N' with an integer N; got {text!r}."
            ) from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"`device` must be one of cuda:0..cuda:{torch.cuda.device_count() - 1}; "
                f"got {text!r}."
            )
        return dev
    return torch.device("cpu")


class PipelinedStager:
    """Double-buffered staging of chunks through reused (pinned) host buffers.

    Parameters
    ----------
    device : torch.device
        Compute device. On ``cuda``, host buffers are pinned and copies are asynchronous on
        a side stream; on ``cpu`` the same steps run synchronously.
    chunk_elems : int
        Elements per chunk and side; float32 device buffers hold this many elements, and
        each host buffer ``chunk_elems * 4`` bytes at most (raw bytes of the widest dtype
        seen, float64 excepted).
    """

    def __init__(self, device: torch.device, chunk_elems: int):
        import torch

        self.device = device
        self.chunk_elems = chunk_elems
        self.cuda = device.type == "cuda"
        self._slot = 0
        self._host: list[dict[str, torch.Tensor]] = [{}, {}]
        self._raw: list[dict[str, torch.Tensor]] = [{}, {}]
        self._work: dict[str, torch.Tensor] = {}
        if self.cuda:
            self._copy_stream = torch.cuda.Stream(device=device)
            self._h2d_done = [torch.cuda.Event(), torch.cuda.Event()]
            self._consumed = [torch.cuda.Event(), torch.cuda.Event()]
            self._used = [False, False]

    def _host_buffer(self, slot: int, side: str, nbytes: int) -> torch.Tensor:
        import torch

        buf = self._host[slot].get(side)
        if buf is None or buf.numel() < nbytes:
            if buf is not None and self.cuda:
                self._h2d_done[slot].synchronize()  # the old buffer may still be in flight
            size = max(nbytes, min(self.chunk_elems * 4, 2 * nbytes))
            buf = torch.empty(size, dtype=torch.uint8, pin_memory=self.cuda)
            self._host[slot][side] = buf
        return buf[:nbytes]

    def _device_buffer(self, table: dict[str, torch.Tensor], key: str, n: int, dtype: Any):
        import torch

        buf = table.get(key)
        if buf is None or buf.numel() < n or buf.dtype != dtype:
            if buf is not None and self.cuda:
                torch.cuda.synchronize(self.device)  # queued copies may still use the old one
            size = max(n, min(self.chunk_elems, 2 * n)) if dtype == torch.float32 else n
            buf = torch.empty(size, dtype=dtype, device=self.device)
            table[key] = buf
        return buf[:n]

    def load(self, job: StreamJob, e0: int, e1: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        import torch

        slot = self._slot
        self._slot ^= 1
        if self.cuda and self._used[slot]:
            self._h2d_done[slot].synchronize()  # pinned buffers of this slot are free again
        staged: dict[str, tuple[torch.Tensor, torch.dtype]] = {}
        for side, seg in (("ft", job.finetuned), ("base", job.base)):
            if seg is None:
                continue
            view = seg.reader.view(seg.info, seg.start + e0, seg.start + e1)
            raw = view.view(torch.uint8) if view.numel() else view.new_empty(0, dtype=torch.uint8)
            host = self._host_buffer(slot, side, raw.numel())
            host.copy_(raw)
            seg.reader.release(seg.info, seg.start + e0, seg.start + e1)
            staged[side] = (host, view.dtype)
        stream_ctx = torch.cuda.stream(self._copy_stream) if self.cuda else contextlib.nullcontext()
        device_raw: dict[str, torch.Tensor] = {}
        with stream_ctx:
            if self.cuda:
                self._copy_stream.wait_event(self._consumed[slot])
            for side, (host, _) in staged.items():
                dev = self._device_buffer(self._raw[slot], side, host.numel(), torch.uint8)
                dev.copy_(host, non_blocking=True)
                device_raw[side] = dev
            if self.cuda:
                self._h2d_done[slot].record(self._copy_stream)
                self._used[slot] = True
        if self.cuda:
            torch.cuda.current_stream(self.device).wait_event(self._h2d_done[slot])
        n = e1 - e0
        ft = self._device_buffer(self._work, "ft", n, torch.float32)
        base = None
        for side, dev in device_raw.items():
            typed = dev.view(staged[side][1])
            if side == "ft":
                ft.copy_(typed)
            else:
                base = self._device_buffer(self._work, "base", n, torch.float32)
                base.copy_(typed)
        if self.cuda:
            self._consumed[slot].record(torch.cuda.current_stream(self.device))
        return ft, base

    def finish(self) -> None:
        """Wait for the device to finish (statistics are read after this)."""
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)


def make_stager(device: torch.device, chunk_elems: int, *, pipelined: bool | None = None) -> Any:
    """The stager for ``device``: pipelined on CUDA, direct reused buffers on the CPU.

    ``pipelined=True`` forces the double-buffered path on the CPU too (for tests).
    """
    from measurement._stream import CpuStager

    if pipelined is None:
        pipelined = device.type == "cuda"
    if pipelined:
        return PipelinedStager(device, chunk_elems)
    return CpuStager(chunk_elems)
