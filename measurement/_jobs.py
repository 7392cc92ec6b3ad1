"""Long-job plumbing: progress bars and resumable journals.

Progress bars are rich bars on stderr, so that ``--json`` output on stdout stays clean: one that
counts work units (:func:`progress_bar`) and one that counts bytes and shows GB/s
(:func:`byte_progress`, for the streaming pass over checkpoints).

Resuming: an append-only JSON Lines journal of finished work units. The first line holds a
fingerprint of the job (model, data, settings; file paths, sizes and modification times). Each
later line is one finished unit (a batch of examples, a Monte-Carlo sample, a batch of tensors'
statistics), written and fsynced as soon as it is done. A rerun with the same fingerprint skips
the finished units; a different fingerprint starts afresh. A line cut short by a kill is
ignored. The journal is removed when the job's output has been written.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pacbound.support import atomic_write_text, to_jsonable

__all__ = ["Journal", "byte_progress", "journal_path", "progress_bar"]


def journal_path(out: str | os.PathLike[str]) -> Path:
    """The journal that belongs to the output file ``out`` (a hidden file beside it)."""
    target = Path(out)
    return target.with_name(f".{target.name}.journal.jsonl")


class Journal:
    """Record finished units of a job so that a rerun resumes where a kill stopped it.

    Used as a context manager, the journal is closed on exit: removed when the block
    succeeds (the job's output is complete), kept for the rerun when it raises.

    Parameters
    ----------
    path : path-like or None
        The journal file; ``None`` keeps nothing (no resuming).
    fingerprint : dict
        JSON-safe description of the job; a journal with another fingerprint is discarded.
    """

    def __init__(self, path: str | os.PathLike[str] | None, fingerprint: dict[str, Any]):
        self.path = None if path is None else Path(path)
        self.fingerprint = to_jsonable(fingerprint)
        self._done: dict[str, Any] = {}
        self._fh = None
        if self.path is None:
            return
        if self.path.exists():
            self._done = self._read()
        # rewritten whole: drops a cut-short last line or a stale journal of another job
        text = json.dumps({"fingerprint": self.fingerprint}) + "\n"
        text += "".join(self._line(k, v) for k, v in self._done.items())
        atomic_write_text(self.path, text)
        self._fh = open(self.path, "a", encoding="utf-8")  # closed in close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.close(remove=exc_type is None)

    @staticmethod
    def _line(key: str, payload: Any) -> str:
        return json.dumps({"key": key, "payload": payload}) + "\n"

    @property
    def done(self) -> dict[str, Any]:
        """Finished units: key -> payload."""
        return dict(self._done)

    def record(self, key: str, payload: Any) -> None:
        """Append one finished unit (flushed and fsynced)."""
        self._done[key] = to_jsonable(payload)
        if self._fh is None:
            return
        self._fh.write(self._line(key, self._done[key]))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self, *, remove: bool) -> None:
        """Close the file; ``remove`` deletes it (the job's output is complete)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if remove and self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _read(self) -> dict[str, Any]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0]) if lines else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        if not isinstance(header, dict) or header.get("fingerprint") != self.fingerprint:
            return {}
        done: dict[str, Any] = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                done[str(entry["key"])] = entry["payload"]
            except (json.JSONDecodeError, KeyError, TypeError):
                break  # the last line was cut short by a kill
        return done


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k)``; when ``enabled``, a rich progress bar on stderr follows it."""
    if not enabled:
        yield lambda k=1: None
        return
    from rich.progress import MofNCompleteColumn, TimeElapsedColumn

    with _rich_bar(description, total, MofNCompleteColumn(), TimeElapsedColumn()) as advance:
        yield lambda k=1: advance(k)


@contextlib.contextmanager
def byte_progress(
    description: str, total_bytes: int, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(nbytes)``; when ``enabled``, show bytes read, GB/s and time left."""
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
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        *middle,
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda k: bar.advance(task, k)
