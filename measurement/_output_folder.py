"""Training output folders: the ``checkpoint-<step>`` folders a Trainer saves, and the latest one.

A Hugging Face Trainer (also TRL, LlamaFactory) saves ``<output_dir>/checkpoint-<global step>/``
every ``save_steps``; the final weights land in ``<output_dir>`` itself only when the script calls
``save_model`` at the end. :func:`checkpoint_folders` lists the checkpoints by step and
:func:`resolve_output_folder` turns an output folder without weights of its own into its latest
checkpoint. :func:`resolve_model_path` turns a hub id or an HF cache folder into a local
snapshot folder, offline.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["checkpoint_folders", "has_weights", "resolve_model_path", "resolve_output_folder"]

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


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def resolve_model_path(spec: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """A model given as a local path, an HF cache folder, or a hub id, as a local folder.

    - an existing file or folder: itself, except an HF cache repo root
      (``models--<org>--<name>``, with ``refs/`` and ``snapshots/``), which gives the snapshot
      its ``refs/main`` names;
    - a hub id such as ``Qwen/Qwen2.5-0.5B`` that is not a local path: its snapshot in the local
      Hugging Face cache (``HF_HUB_CACHE``), looked up with ``local_files_only=True``, so nothing
      is ever downloaded.

    Returns the path and a note saying how it was resolved (None when ``spec`` is used as is).

    Raises
    ------
    FileNotFoundError
        ``spec`` is neither a local path nor a hub id in the local cache (the message names
        the cache looked in).
    """
    path = Path(spec)
    if path.exists():
        if path.is_dir() and (path / "snapshots").is_dir() and (path / "refs").is_dir():
            ref = path / "refs" / "main"
            snaps = sorted((path / "snapshots").iterdir())
            if ref.is_file():
                snap = path / "snapshots" / ref.read_text(encoding="utf-8").strip()
            elif len(snaps) == 1:
                snap = snaps[0]
            else:
                raise FileNotFoundError(
                    f"{path}: an HF cache folder without refs/main and with {len(snaps)} "
                    "snapshots; pass the snapshots/<hash> folder you mean."
                )
            if snap.is_dir():
                return snap, f"{path}: HF cache folder; using snapshot {snap.name}"
        return path, None
    text = os.fspath(spec)
    if not _HUB_ID.fullmatch(text):
        return path, None
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        local = snapshot_download(text, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise FileNotFoundError(
            f"`{text}` is not a local path, and the hub id is not in the local Hugging Face "
            f"cache ({constants.HF_HUB_CACHE}); nothing is downloaded: fetch it first "
            f"(`hf download {text}`) or pass a local folder."
        ) from None
    return Path(local), f"{text}: from the local Hugging Face cache, {local}"


def adapter_base(adapter: str | os.PathLike[str]) -> tuple[Path, str]:
    """The base model a PEFT adapter names (``base_model_name_or_path`` of its
    ``adapter_config.json``), resolved locally by :func:`resolve_model_path` (a folder, an HF
    cache folder, or a hub id in the local cache; never downloaded).

    Returns the local folder and a note saying where it came from.

    Raises
    ------
    FileNotFoundError
        The adapter has no ``adapter_config.json``, names no base, or its base is not local.
    """
    import json

    config = Path(adapter) / "adapter_config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{adapter}: no adapter_config.json, so no base model is named.")
    name = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not name:
        raise FileNotFoundError(
            f"{config}: `base_model_name_or_path` is empty; pass the base model explicitly."
        )
    path, note = resolve_model_path(name)
    if not path.exists():
        raise FileNotFoundError(
            f"{config}: the base it names, {name!r}, is not a local folder nor a hub id in the "
            "local cache; pass the base model explicitly."
        )
    return path, f"base model from {config}: {name}" + (f" ({note})" if note else "")
