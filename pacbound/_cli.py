"""Shared command-line plumbing: error reporting, JSON output and number lists.

Every ``tradeoff`` command wraps its body in :func:`user_errors`, so that a
:class:`~pacbound.exceptions.TradeoffError` (or a missing file) prints one line on stderr and
exits with status 2, with no traceback. Heavy imports (torch, transformers) belong inside the
command functions, so that ``tradeoff --help`` and the pure-math commands stay fast.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import typer

from pacbound._io import to_jsonable
from pacbound.exceptions import InvalidParameterError, TradeoffError

__all__ = ["EXIT_USAGE", "parse_float_list", "print_json", "user_errors"]

EXIT_USAGE = 2


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn user errors into one stderr line and exit status 2."""
    try:
        yield
    except TradeoffError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        name = getattr(exc, "filename", None)
        what = f"{exc.strerror}: {name}" if name else str(exc)
        typer.echo(f"error: {what}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (NaN and infinities become null)."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2) + "\n")


def parse_float_list(text: str, name: str) -> list[float]:
    """Parse a comma-separated list of numbers given on the command line for ``name``."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise InvalidParameterError(
            f"`{name}` must be a number or a comma-separated list; got {text!r}."
        )
    out = []
    for item in items:
        try:
            out.append(float(item))
        except ValueError:
            raise InvalidParameterError(
                f"`{name}` must be a number or a comma-separated list of numbers; got {item!r}."
            ) from None
    return out
