"""Output paths that cannot destroy an input, and the marker of folders the toolkit wrote.

Every output folder the toolkit writes (:func:`~pacbound.support.atomic_dir`, and the
resumable folders of long jobs) holds an empty marker file, :data:`OUTPUT_MARKER`. A command
replaces or writes into an existing non-empty folder only when it carries the marker (or the
user passes ``--overwrite``), and never writes to a path that is, contains or lies inside one
of its inputs: ``fit runs/ --out runs/`` would otherwise delete the runs it reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pacbound.exceptions import InvalidParameterError

__all__ = ["OUTPUT_MARKER", "check_output_path", "mark_output_dir"]

#: Name of the empty file that marks a folder written by this toolkit.
OUTPUT_MARKER = ".sft-tradeoff-output"

# hidden files a resumable job leaves in its output folder before the folder is complete
_JOB_FILE_SUFFIXES = (".journal.jsonl", ".lock", ".tmp")


def _resolve(path: Path, name: str | None) -> Path:
    try:
        return Path(os.path.abspath(path)).resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        what = f"`{name}` {path}" if name else f"the input {path}"
        raise InvalidParameterError(f"{what} cannot be resolved ({exc}).") from None


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _toolkit_owned(folder: Path) -> bool:
    """Whether ``folder`` is empty, marked, or holds only a resumable job's hidden files."""
    entries = list(os.scandir(folder))
    if any(e.name == OUTPUT_MARKER for e in entries):
        return True
    return all(e.name.startswith(".") and e.name.endswith(_JOB_FILE_SUFFIXES) for e in entries)


def mark_output_dir(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and parents) if needed and write the marker into it; return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OUTPUT_MARKER).touch()
    return folder


def check_output_path(
    out: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    *,
    kind: Literal["file", "dir"],
    overwrite: bool = False,
    replaces: bool = True,
    name: str = "--out",
) -> Path:
    """Refuse an output path that would destroy an input or files the toolkit did not write.

    Parameters
    ----------
    out : path
        The output: a file (``kind="file"``) or a folder (``kind="dir"``).
    inputs : iterable of paths
        The command's input files and folders (None and non-paths such as hub ids that do
        not exist are skipped).
    kind : {"file", "dir"}
        What the command writes at ``out``.
    overwrite : bool
        Allow replacing (or writing into) an existing non-empty folder without the marker
        :data:`OUTPUT_MARKER`.
    replaces : bool
        Whether the command replaces (or deletes files in) an existing folder ``out``; a
        command that only adds its own files beside others passes False, and the marker is
        not required.
    name : str
        The option, for messages.

    Returns
    -------
    Path
        ``out`` as given.

    Raises
    ------
    InvalidParameterError
        ``out`` is, contains or is inside an input; is the current folder or one above it;
        is a folder where a file is written or a file where a folder is written; or is a
        non-empty folder without the marker and ``overwrite`` is False.
    """
    out = Path(out)
    target = _resolve(out, name)
    for item in inputs:
        if item is None:
            continue
        path = Path(item)
        if not os.path.lexists(path):
            continue
        source = _resolve(path, None)
        if _inside(target, source) or _inside(source, target):
            how = "is" if target == source else ("is inside" if _inside(target, source) else "contains")
            raise InvalidParameterError(
                f"`{name}` must not be, contain or lie inside an input; got {out}, which {how} "
                f"the input {path}."
            )
    if _inside(Path.cwd().resolve(), target):
        raise InvalidParameterError(
            f"`{name}` must not be the current folder or a folder above it; got {out}."
        )
    if kind == "file":
        if target.is_dir():
            raise InvalidParameterError(f"`{name}` must be a file path; got {out}, a folder.")
        return out
    if target.exists() and not target.is_dir():
        raise InvalidParameterError(
            f"`{name}` must be a folder; got {out}, an existing file (remove it or choose "
            "another folder)."
        )
    if replaces and target.is_dir() and not overwrite and not _toolkit_owned(target):
        raise InvalidParameterError(
            f"`{name}` {out} is a non-empty folder that this toolkit did not write (no "
            f"{OUTPUT_MARKER} file); pass --overwrite to replace it, or choose another folder."
        )
    return out
