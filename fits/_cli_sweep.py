"""Sub-commands of ``tradeoff`` (see the package's ``cli.py``)."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False)
