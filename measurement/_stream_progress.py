"""A byte-counting progress bar (rich, on stderr) for the streaming pass: bytes and GB/s."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["byte_progress"]


@contextlib.contextmanager
def byte_progress(
    description: str, total_bytes: int, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(nbytes)``; when ``enabled``, show bytes read, GB/s and time left."""
    if not enabled:
        yield lambda nbytes: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=False),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=max(total_bytes, 1))
        yield lambda nbytes: bar.advance(task, nbytes)
