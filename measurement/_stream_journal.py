"""Resume a killed streaming pass: an append-only JSON Lines journal of finished tensors.

Line 1 holds a fingerprint of the job (file paths, sizes and modification times, options);
each later line one batch of finished tensors' statistics, flushed and fsynced. A rerun with
the same fingerprint skips those tensors; another fingerprint starts afresh; a last line cut
short by a kill is ignored. The journal is deleted once the statistics are complete.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from pacbound._io import atomic_write_text, to_jsonable

__all__ = ["StreamJournal"]


class StreamJournal:
    """Finished work units of a pass, kept on disk when ``path`` is given.

    Parameters
    ----------
    path : path-like or None
        Journal file; ``None`` keeps nothing.
    fingerprint : dict
        JSON-safe identity of the job.
    """

    def __init__(self, path: str | os.PathLike[str] | None, fingerprint: dict[str, Any]):
        self.path = None if path is None else Path(path)
        self.fingerprint = to_jsonable(fingerprint)
        self.done: dict[str, Any] = {}
        self._fh = None
        if self.path is None:
            return
        if self.path.exists():
            self.done = self._read()
        text = json.dumps({"fingerprint": self.fingerprint}) + "\n"
        text += "".join(json.dumps({"key": k, "value": v}) + "\n" for k, v in self.done.items())
        atomic_write_text(self.path, text)  # drops a cut-short tail or a stale journal
        self._fh = open(self.path, "a", encoding="utf-8")  # closed in close()

    def _read(self) -> dict[str, Any]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0]) if lines else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        if header.get("fingerprint") != self.fingerprint:
            return {}
        done: dict[str, Any] = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break
            done[str(entry["key"])] = entry["value"]
        return done

    def record(self, key: str, value: Any) -> None:
        """Append one finished unit (flushed and fsynced)."""
        self.done[key] = to_jsonable(value)
        if self._fh is not None:
            self._fh.write(json.dumps({"key": key, "value": self.done[key]}) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self, *, remove: bool) -> None:
        """Close; ``remove`` deletes the journal (the output is complete)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if remove and self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
