"""Zero-copy access to the tensor data of a planned checkpoint.

safetensors files are memory-mapped copy-on-write (``MAP_PRIVATE``): :meth:`CheckpointReader.view`
returns a 1-D tensor over a byte range of the mapping, without copying, in the tensor's own
dtype. After a chunk has been consumed, :meth:`CheckpointReader.release` drops its pages from
this process (``MADV_DONTNEED``; the kernel keeps them in the page cache), so the resident set
does not grow with the file; :meth:`CheckpointReader.prefetch` asks the kernel to read the next
chunk ahead (``MADV_WILLNEED``). ``.bin`` checkpoints are served from the tensors that
``torch.load(mmap=True)`` returned.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path
from typing import TYPE_CHECKING

from measurement._checkpoint import Checkpoint, TensorInfo

if TYPE_CHECKING:
    import torch

__all__ = ["CheckpointReader"]

_PAGE = mmap.PAGESIZE


class CheckpointReader:
    """Serve element ranges of a checkpoint's tensors as zero-copy torch views.

    Parameters
    ----------
    checkpoint : Checkpoint
        The plan from :func:`measurement._checkpoint.open_checkpoint`.

    Notes
    -----
    Views stay valid until :meth:`close`. Their memory is the file mapping: never modify a
    view in place (copy it into a buffer first); the mapping is private, so a stray write
    could never reach the file, but it would turn clean pages into anonymous memory.
    """

    def __init__(self, checkpoint: Checkpoint):
        self.checkpoint = checkpoint
        self._maps: dict[Path, mmap.mmap] = {}
        self._fds: dict[Path, int] = {}

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _map(self, file: Path) -> mmap.mmap:
        mm = self._maps.get(file)
        if mm is None:
            fd = os.open(file, os.O_RDONLY)
            try:
                mm = mmap.mmap(fd, 0, access=mmap.ACCESS_COPY)
            except (OSError, ValueError):
                os.close(fd)
                raise
            with contextlib.suppress(OSError, AttributeError):
                mm.madvise(mmap.MADV_SEQUENTIAL)
            self._maps[file] = mm
            self._fds[file] = fd
        return mm

    def view(self, info: TensorInfo, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Elements ``[start, stop)`` of the flattened tensor, as a 1-D zero-copy view."""
        import torch

        from measurement._safetensors import TORCH_DTYPE_NAMES

        stop = info.numel if stop is None else stop
        count = stop - start
        dtype = getattr(torch, TORCH_DTYPE_NAMES[info.dtype])
        if self.checkpoint.format == "torch":
            tensor = self.checkpoint.torch_state[info.file][info.name]
            return tensor.reshape(-1)[start:stop]
        if count == 0:
            return torch.empty(0, dtype=dtype)
        mm = self._map(info.file)
        offset = info.data_start + start * info.itemsize
        return torch.frombuffer(mm, dtype=dtype, count=count, offset=offset)

    def tensor(self, info: TensorInfo) -> torch.Tensor:
        """The whole tensor, copied out of the mapping, in its shape and dtype (small tensors)."""
        return self.view(info).clone().reshape(info.shape)

    def _advise(self, info: TensorInfo, start: int, stop: int, option: int) -> None:
        if self.checkpoint.format != "safetensors" or stop <= start:
            return
        mm = self._map(info.file)
        begin = info.data_start + start * info.itemsize
        end = info.data_start + stop * info.itemsize
        begin -= begin % _PAGE
        end = min(len(mm), -(-end // _PAGE) * _PAGE)
        with contextlib.suppress(OSError, ValueError):
            mm.madvise(option, begin, end - begin)

    def release(self, info: TensorInfo, start: int, stop: int) -> None:
        """Drop the pages of elements ``[start, stop)`` from this process (page cache kept)."""
        self._advise(info, start, stop, mmap.MADV_DONTNEED)

    def prefetch(self, info: TensorInfo, start: int, stop: int) -> None:
        """Ask the kernel to start reading elements ``[start, stop)`` ahead of use."""
        self._advise(info, start, stop, mmap.MADV_WILLNEED)

    def close(self) -> None:
        """Unmap every file (views handed out before must no longer be used)."""
        for file, mm in list(self._maps.items()):
            with contextlib.suppress(BufferError):
                mm.close()
            with contextlib.suppress(OSError):
                os.close(self._fds.pop(file))
            del self._maps[file]
