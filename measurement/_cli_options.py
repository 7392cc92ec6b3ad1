"""Options that mean the same in every ``measurement`` command (one definition each)."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["ADAPTER", "PROGRESS"]

ADAPTER: Path | None = typer.Option(
    None,
    "--adapter",
    help="A PEFT LoRA adapter folder, applied on top of the base model (the first argument).",
)
PROGRESS: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars on stderr.")
