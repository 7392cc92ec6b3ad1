"""Long-job plumbing: resumable journals (the progress bars are
:func:`pacbound.support.progress_bar` and :func:`pacbound.support.byte_progress`).

Resuming: an append-only JSON Lines journal of finished work units. The first line holds a
fingerprint of everything the job's result depends on: the model's weights
(:func:`parameter_fingerprint` for a loaded model, :func:`measurement.checkpoint_fingerprint`
for files), the content of the rows used (:func:`rows_digest`) and every option that changes
the result. Each later line is one finished unit (a batch of examples, a Monte-Carlo sample, a
batch of tensors' statistics), written and fsynced as soon as it is done. A rerun with the
same fingerprint skips the finished units; a different fingerprint starts afresh, with a
warning that names the fields that differ. A line cut short by a kill is ignored. The journal
is removed when the job's output has been written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from pacbound.support import atomic_write_text, to_jsonable

__all__ = ["Journal", "journal_path", "parameter_fingerprint", "rows_digest"]

#: Elements read per parameter tensor by :func:`parameter_fingerprint` (strided over it).
_SAMPLE = 1024


def parameter_fingerprint(model: Any) -> str:
    """A digest of a loaded model's weights, cheap enough to take before every journaled job.

    For each parameter (in name order) its name, shape and dtype, and ``1024`` elements taken
    with a constant stride over the flattened tensor plus its last element, in float64. Two
    models whose weights differ anywhere a fine-tune changes them (every element of a trained
    matrix, the factors of a LoRA adapter) get different digests; the digest does not depend
    on the device, and reading it costs a few thousand elements per tensor.
    """
    import torch

    digest = hashlib.sha256()
    samples = []
    for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        digest.update(f"{name}:{tuple(param.shape)}:{param.dtype};".encode())
        if param.device.type == "meta" or param.numel() == 0:
            continue
        flat = param.detach().reshape(-1)
        step = max(1, flat.numel() // _SAMPLE)
        samples.append(torch.cat([flat[::step][:_SAMPLE], flat[-1:]]).to(torch.float64))
    if samples:
        digest.update(torch.cat([s.cpu() for s in samples]).numpy().tobytes())
    return digest.hexdigest()


def rows_digest(examples: Any) -> str:
    """sha256 of the rows a job reads: every column of ``examples.table`` (or of a DataFrame),
    values and names, in row order."""
    import pandas as pd

    table = getattr(examples, "table", examples)
    digest = hashlib.sha256(json.dumps([str(c) for c in table.columns]).encode())
    hashed = pd.util.hash_pandas_object(table.astype(str), index=False)
    digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


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
        self._stale: tuple[list[str], int] | None = None
        if self.path is None:
            return
        if self.path.exists():
            self._done = self._read()
            if self._stale is not None:
                warnings.warn(
                    f"Resume journal `{self.path}` was written by another job (it differs in: "
                    f"{', '.join(self._stale[0]) or 'its format'}); its {self._stale[1]} "
                    "finished unit(s) are discarded and the job starts afresh.",
                    UserWarning,
                    stacklevel=2,
                )
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
            old = header.get("fingerprint") if isinstance(header, dict) else None
            new = self.fingerprint
            if isinstance(old, dict) and isinstance(new, dict):
                keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            else:
                keys = []
            self._stale = (keys, max(len(lines) - 1, 0))
            return {}
        done: dict[str, Any] = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                done[str(entry["key"])] = entry["payload"]
            except (json.JSONDecodeError, KeyError, TypeError):
                break  # the last line was cut short by a kill
        return done
