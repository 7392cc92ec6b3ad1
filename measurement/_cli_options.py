"""Options that mean the same in every ``measurement`` command (one definition each), and the
resolution of the models those commands are given.

A model argument may be a local folder or file, a Hugging Face cache folder (a repo root
``models--<org>--<name>`` or one of its ``snapshots/<hash>``), or a hub id looked up offline in
the local cache (:func:`measurement.resolve_model_path`; nothing is ever downloaded). With a
PEFT adapter, BASE may be left out: the default is the base the adapter's
``adapter_config.json`` names (``base_model_name_or_path``), when that resolves locally.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pacbound.exceptions import InputFileError

__all__ = ["ADAPTER", "PROGRESS", "adapter_default_base", "local_model"]

ADAPTER: Path | None = typer.Option(
    None,
    "--adapter",
    help="A PEFT LoRA adapter folder, applied on top of the base model (the first argument; "
    "when that is left out, the base_model_name_or_path of its adapter_config.json, found "
    "locally: a folder or a hub id in the local HF cache, never downloaded).",
)
PROGRESS: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars on stderr.")


def _note(line: str | None) -> None:
    if line:
        typer.echo(f"note: {line}", err=True)


def local_model(spec: str | Path, *, checkpoints: bool = False) -> Path:
    """``spec`` as a local model path: a hub id or an HF cache folder becomes its snapshot
    folder (offline), and with ``checkpoints`` a training output folder without weights of its
    own becomes its latest ``checkpoint-<step>``. Each resolution prints one ``note:`` line on
    stderr; a hub id missing from the local cache raises ``FileNotFoundError`` (one line)."""
    from measurement._output_folder import resolve_model_path, resolve_output_folder

    path, note = resolve_model_path(spec)
    _note(note)
    if checkpoints:
        path, note = resolve_output_folder(path)
        _note(note)
    return path


def _named_base(adapter: Path) -> str | None:
    try:
        config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return name or None


def adapter_default_base(adapter: Path, *, what: str = "BASE", via: str = "--adapter") -> Path:
    """The base model of ``adapter`` when ``what`` (the base argument) was left out.

    It is the adapter's ``base_model_name_or_path``, resolved locally by
    :func:`measurement.adapter_base` (a folder, an HF cache folder or a hub id in the local
    cache; never downloaded). One ``note:`` line on stderr says which base is used and where
    it came from. ``via`` names the argument that gave the adapter, for messages.

    Raises
    ------
    InputFileError
        The adapter names no base, or the base it names does not resolve locally; the one-line
        message names the adapter, the value of ``base_model_name_or_path`` and what is allowed.
    """
    from measurement._output_folder import adapter_base

    try:
        path, note = adapter_base(adapter)
    except FileNotFoundError as exc:
        name = _named_base(adapter)
        if name is None:
            raise InputFileError(
                f"`{what}` must be given when the adapter names no base model; got no {what}, "
                f"and {exc}"
            ) from None
        from huggingface_hub import constants

        hub_id = not Path(name).is_absolute() and name.count("/") == 1
        fetch = f"`hf download {name}`" if hub_id else "`hf download <hub id>`"
        raise InputFileError(
            f"`{what}` must be given, or the base that {via} names must resolve locally (a "
            f"local folder, or a hub id in the local Hugging Face cache {constants.HF_HUB_CACHE}, "
            f"which {fetch} populates: nothing is downloaded here); got no {what}, "
            f"and {Path(adapter) / 'adapter_config.json'} names base_model_name_or_path="
            f"{name!r}, which does not resolve locally."
        ) from None
    _note(f"{what} not given, so using the {note}")
    return path
