"""Shared command-line plumbing: error reporting, output, warnings and option parsing.

Every ``tradeoff`` command wraps its body in :func:`user_errors`, so that a
:class:`~pacbound.exceptions.TradeoffError` (or a missing file) prints one line on stderr and
exits with status 2, with no traceback. Heavy imports (torch, transformers) belong inside the
command functions, so that ``tradeoff --help`` and the pure-math commands stay fast.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import typer
from typer.core import TyperCommand

from pacbound.exceptions import InvalidParameterError, TradeoffError
from pacbound.support._io import to_jsonable

__all__ = [
    "EXIT_USAGE",
    "parse_assignments",
    "parse_float",
    "parse_float_list",
    "parse_floats",
    "print_json",
    "print_result",
    "split_names",
    "user_errors",
    "warnings_to_stderr",
]

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


def print_result(
    result: Any, *, as_json: bool, payload: Any = None, text: str | None = None
) -> None:
    """Print a command's result: ``payload`` (default ``result``) as JSON under ``--json``,
    else ``text`` (default ``str(result)``)."""
    if as_json:
        print_json(result if payload is None else payload)
    else:
        typer.echo(str(result) if text is None else text)


@contextlib.contextmanager
def warnings_to_stderr(*categories: type[Warning]) -> Iterator[None]:
    """Record the warnings raised in the block; afterwards print each distinct one of
    ``categories`` (default: ``UserWarning``) as one ``warning:`` line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: set[str] = set()
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, categories or (UserWarning,)) and text not in seen:
            seen.add(text)
            typer.echo(f"warning: {text}", err=True)


def split_names(text: str | None) -> list[str]:
    """Split a comma-separated list of names (stripped, empty items dropped; None gives [])."""
    return [t.strip() for t in str(text).split(",") if t.strip()] if text is not None else []


def parse_float_list(text: str, name: str) -> list[float]:
    """Parse a comma-separated list of numbers given on the command line for ``name``."""
    items = split_names(str(text))
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


def parse_floats(text: str, name: str, count: int, *, form: str) -> tuple[float, ...]:
    """Parse exactly ``count`` comma-separated numbers for ``name``; ``form`` says what is
    allowed in the message (e.g. "two numbers LO,HI")."""
    values = parse_float_list(text, name)
    if len(values) != count:
        raise InvalidParameterError(f"`{name}` must be {form}; got {text!r}.")
    return tuple(values)


def parse_float(text: str, name: str) -> float:
    """Parse one number given on the command line for ``name``."""
    return parse_floats(text, name, 1, form="a single number")[0]


def parse_assignments(
    items: Iterable[str],
    name: str,
    *,
    form: str = "NAME=VALUE",
    convert: Callable[[str], Any] = str,
    key_ok: Callable[[str], bool] = bool,
    split_last: bool = False,
    unique: str | None = None,
) -> dict[str, Any]:
    """Parse repeated ``KEY=VALUE`` options of ``name`` into a dict (keys and values stripped).

    Parameters
    ----------
    items : iterable of str
        The option's values, e.g. ``["k=1.5", "g=2"]``.
    name : str
        The option, e.g. ``"--param"``.
    form : str
        What is allowed, for the message "`name` must be <form>; got <item>.".
    convert : callable
        Turns the value text into the value; a ValueError or TypeError rejects the item.
    key_ok : callable
        Accepts the key (default: any non-empty key).
    split_last : bool
        Split at the last ``=`` (keys may contain ``=``) instead of the first.
    unique : str, optional
        What a key names, when each may be given once only (e.g. "parameter"); otherwise a
        repeated key keeps its last value.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.rpartition("=") if split_last else item.partition("=")
        key, text = key.strip(), text.strip()
        try:
            ok = bool(sep and key and text and key_ok(key))
            value = convert(text) if ok else None
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidParameterError(f"`{name}` must be {form}; got {item!r}.")
        if unique is not None and key in out:
            raise InvalidParameterError(
                f"`{name}` must name each {unique} once; got {key!r} twice."
            )
        out[key] = value
    return out


def reflow_help(text: str) -> str:
    """Join the lines of each prose paragraph of a help text, so the terminal wraps it.

    Paragraphs are separated by blank lines; a paragraph with an indented line (a list) keeps
    its line breaks. An ``Examples:`` heading and the example paragraphs after it (indented, or
    starting with ``tradeoff``) become one unwrapped block (``\\b``), each example indented by
    two spaces, so every command renders its examples alike.
    """
    paragraphs = inspect.cleandoc(text).split("\n\n")
    out: list[str] = []
    examples: list[str] | None = None
    for para in paragraphs:
        lines = para.split("\n")
        if examples is not None and (
            all(line[:1].isspace() for line in lines) or para.startswith("tradeoff ")
        ):
            examples.append(textwrap.indent(textwrap.dedent(para), "  "))
            continue
        if examples is not None:
            out.append("\b\n" + "\n".join(examples))
            examples = None
        if para.strip() in ("Examples:", "Example:"):
            examples = [para.strip()]
        elif any(line[:1].isspace() for line in lines) or para.startswith("\b"):
            out.append(para)
        else:
            out.append(" ".join(line.strip() for line in lines))
    if examples is not None:
        out.append("\b\n" + "\n".join(examples))
    return "\n\n".join(out)


class _ReflowedCommand(TyperCommand):
    """A Typer command whose help paragraphs are re-flowed to the terminal width."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help:
            self.help = reflow_help(self.help)


class _ToolkitTyper(typer.Typer):
    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", _ReflowedCommand)
        return super().command(*args, **kwargs)


def make_app(**kwargs: Any) -> typer.Typer:
    """A Typer app with the toolkit's conventions.

    No shell-completion options; help rendered in rich mode, with the lines of each prose
    paragraph joined so that the terminal wraps them (indented example lines are kept).
    """
    kwargs.setdefault("add_completion", False)
    kwargs.setdefault("rich_markup_mode", "rich")
    return _ToolkitTyper(**kwargs)
