"""Long-job plumbing: progress bars and resumable journals.

Progress bars are rich bars on stderr, so that ``--json`` output on stdout stays clean.

Resuming: an append-only JSON Lines journal of finished work units. The first line holds a
fingerprint of the job (model, data, settings). Each later line is one finished unit (a batch
of examples, a Monte-Carlo sample), written and fsynced as soon as it is done. A rerun with
the same fingerprint skips the finished units; a different fingerprint starts afresh. A line
cut short by a kill is ignored. The journal is removed when the job's output has been written.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pacbound._io import atomic_write_text, to_jsonable

__all__ = ["Journal", "journal_path", "progress_bar"]


def journal_path(out: str | os.PathLike[str]) -> Path:
    """The journal that belongs to the output file ``out`` (a hidden file beside it)."""
    target = Path(out)
    return target.with_name(f".{target.name}.journal.jsonl")


class Journal:
    """Record finished units of a job so that a rerun resumes where a kill stopped it.

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
        if not self._done:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            header = {"fingerprint": self.fingerprint}
            self.path.write_text(json.dumps(header) + "\n", encoding="utf-8")
        self._fh = open(self.path, "a", encoding="utf-8")

    @property
    def done(self) -> dict[str, Any]:
        """Finished units: key -> payload."""
        return dict(self._done)

    def record(self, key: str, payload: Any) -> None:
        """Append one finished unit (flushed and fsynced)."""
        self._done[key] = to_jsonable(payload)
        if self._fh is None:
            return
        self._fh.write(json.dumps({"key": key, "payload": self._done[key]}) + "\n")
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
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            return {}
        if header.get("fingerprint") != self.fingerprint:
            return {}
        done: dict[str, Any] = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break  # the last line was cut short by a kill
            done[str(entry["key"])] = entry["payload"]
        if done:
            # rewrite without a possibly truncated tail, so appends start on a clean line
            text = json.dumps({"fingerprint": self.fingerprint}) + "\n"
            text += "".join(json.dumps({"key": k, "payload": v}) + "\n" for k, v in done.items())
            atomic_write_text(self.path, text)
        return done


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k)``; when ``enabled``, a rich progress bar on stderr follows it."""
    if not enabled:
        yield lambda k=1: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda k=1: bar.advance(task, k)
