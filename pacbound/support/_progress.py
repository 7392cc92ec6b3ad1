"""Progress display for long jobs: rich bars and a stage line, on stderr only.

Everything is drawn on stderr so that ``--json`` output on stdout stays clean. Two kinds:

- :func:`progress_bar` and :func:`byte_progress`: a bar that counts work units (``k/N`` and the
  time elapsed) or bytes (MB read and MB/s), both with the time left; they are drawn in pipes and
  logs too (the final state, once), since a long job's log should say how far it got.
- :class:`Progress`: a transient spinner with the current stage of a fit, shown on a terminal
  only (no stray lines in logs and pipes).

rich is imported only when a display is enabled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Progress", "byte_progress", "progress_bar"]


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k=1, note=None)``; when ``enabled``, a rich bar on stderr counts the
    ``total`` units and prints each ``note`` (e.g. the unit that just finished) above itself."""
    if not enabled:
        yield lambda k=1, note=None: None
        return
    from rich.progress import MofNCompleteColumn, TimeElapsedColumn

    with _rich_bar(description, total, MofNCompleteColumn(), TimeElapsedColumn()) as advance:
        yield lambda k=1, note=None: advance(k, note)


@contextlib.contextmanager
def byte_progress(
    description: str, total_bytes: int, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(nbytes)``; when ``enabled``, show bytes read, MB/s and the time left."""
    if not enabled:
        yield lambda nbytes: None
        return
    from rich.progress import DownloadColumn, TransferSpeedColumn

    columns = (DownloadColumn(binary_units=False), TransferSpeedColumn())
    with _rich_bar(description, max(total_bytes, 1), *columns) as advance:
        yield advance


@contextlib.contextmanager
def _rich_bar(description: str, total: int | None, *middle: Any) -> Iterator[Callable[[int], None]]:
    """A rich bar on stderr: description, bar, the ``middle`` columns and the time left."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        *middle,
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_stderr_console(), transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(k: int, note: str | None = None) -> None:
            bar.advance(task, k)
            if note is not None:
                bar.console.print(note, markup=False, highlight=False)

        yield advance


class Progress:
    """A rich progress line for the stages of a fit (silent when disabled)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            console = _stderr_console()
            if not console.is_terminal:  # no stray lines in logs and pipes
                return self
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                transient=True,
                console=console,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("fit", total=None)
        return self

    def stage(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=f"fit: {text}")

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
