"""Training output folders: the ``checkpoint-<step>`` folders a Trainer saves, and the latest one.

A Hugging Face Trainer (also TRL, LlamaFactory) saves ``<output_dir>/checkpoint-<global step>/``
every ``save_steps``; the final weights land in ``<output_dir>`` itself only when the script calls
``save_model`` at the end. :func:`checkpoint_folders` lists the checkpoints by step and
:func:`resolve_output_folder` turns an output folder without weights of its own into its latest
checkpoint.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["checkpoint_folders", "has_weights", "resolve_output_folder"]

_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "adapter_config.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
)


def checkpoint_folders(folder: str | os.PathLike[str]) -> list[Path]:
    """The ``checkpoint-<step>`` subfolders of ``folder``, sorted by step (numerically, so
    ``checkpoint-1000`` comes after ``checkpoint-900``); empty when there are none."""
    found = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = _CHECKPOINT.fullmatch(entry.name)
        if m is not None and entry.is_dir():
            found.append((int(m.group(1)), Path(entry.path)))
    return [p for _, p in sorted(found)]


def has_weights(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds model or adapter weights (or their index/config) itself."""
    folder = Path(folder)
    return any((folder / name).is_file() for name in _WEIGHT_FILES) or any(
        folder.glob("*.safetensors")
    )


def resolve_output_folder(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """The folder whose weights stand for ``path``, and a note when it is not ``path`` itself.

    A file, or a folder with weights of its own, is returned unchanged (its own files take
    precedence over any checkpoint's). A folder whose only weights are in ``checkpoint-<step>``
    subfolders gives its latest checkpoint and the note ``"<path>: no weights of its own; using
    its latest checkpoint, checkpoint-<step> (of k)"``.
    """
    path = Path(path)
    if not path.is_dir() or has_weights(path):
        return path, None
    ckpts = checkpoint_folders(path)
    if not ckpts:
        return path, None
    return ckpts[-1], (
        f"{path}: no weights of its own; using its latest checkpoint, {ckpts[-1].name} "
        f"(of {len(ckpts)})."
    )
