"""Small file helpers used by every package: nothing is ever half-written.

Outputs are written to a temporary file in the destination folder and moved into place with
:func:`os.replace`, which is atomic on POSIX; a killed process leaves either the old file or
the new one, never a truncated one. On the input side, :func:`read_jsonl_records` reads JSON
Lines and names the line that is not a JSON object.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pacbound.exceptions import InputFileError
from pacbound.support._outputs import OUTPUT_MARKER

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write_text",
    "chmod_like_new",
    "read_jsonl_records",
    "to_jsonable",
    "write_json",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def chmod_like_new(path: Path, *, directory: bool) -> None:
    """Give a mkstemp/mkdtemp result the permissions a plain open/mkdir would have (not 0600)."""
    base = 0o777 if directory else 0o666
    with contextlib.suppress(OSError):
        os.chmod(path, base & ~_umask())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.",
        suffix=suffix if suffix is not None else ".tmp",
        dir=target.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            chmod_like_new(tmp_path, directory=tmp_path.is_dir())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; rename it onto ``path`` when the block succeeds.

    An existing folder at ``path`` is replaced only after the new one is complete. The new
    folder holds the empty marker file ``.sft-tradeoff-output`` (it says the toolkit wrote
    the folder, so that a later command may replace it; see
    :func:`~pacbound.support.check_output_path`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        (tmp / OUTPUT_MARKER).touch()
        chmod_like_new(tmp, directory=True)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, numpy scalars/arrays, paths and non-finite floats to JSON values.

    NaN and infinities become ``None`` (JSON has no such numbers); tuples become lists.
    """
    if is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return to_jsonable(obj.to_dict())
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` (through :func:`to_jsonable`) as JSON, atomically."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=indent) + "\n")


def read_jsonl_records(
    path: str | os.PathLike[str], *, error: type[InputFileError] = InputFileError
) -> list[dict[str, Any]]:
    """The JSON objects of a JSON Lines file, one per non-blank line, in order.

    Raises ``error`` (an :class:`~pacbound.exceptions.InputFileError`) naming the file and
    the line when a line is not valid JSON or not a JSON object.
    """
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(
                    f"{path}: line {lineno} is not valid JSON ({exc.msg} at column {exc.colno})."
                ) from None
            if not isinstance(record, dict):
                raise error(
                    f"{path}: line {lineno} must be a JSON object; got {type(record).__name__}."
                )
            records.append(record)
    return records
