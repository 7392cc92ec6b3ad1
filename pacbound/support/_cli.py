"""Shared command-line plumbing: error reporting, output, warnings and option parsing.

Every ``tradeoff`` command wraps its body in :func:`user_errors`, so that a
:class:`~pacbound.exceptions.TradeoffError` (or a missing file) prints one line on stderr and
exits with status 2, with no traceback. Heavy imports (torch, transformers) belong inside the
command functions, so that ``tradeoff --help`` and the pure-math commands stay fast.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import json
import math
import re
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from pacbound.exceptions import InvalidParameterError, TradeoffError
from pacbound.support._io import to_jsonable

__all__ = [
    "EXIT_USAGE",
    "error_object",
    "guarded",
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


# errors a bad input file raises in the libraries the toolkit reads with: the message of each
# says what is wrong, so the command prints it on one line (with the file, when known)
_BAD_FILE_ERRORS: tuple[type[BaseException], ...] = (UnicodeError, json.JSONDecodeError)


def _bad_file_errors() -> tuple[type[BaseException], ...]:
    errors = list(_BAD_FILE_ERRORS)
    import pickle
    import zipfile

    errors += [pickle.UnpicklingError, zipfile.BadZipFile, EOFError]
    for module, name in (
        ("safetensors", "SafetensorError"),
        ("pyarrow", "ArrowException"),
        ("yaml", "YAMLError"),
        ("tomllib", "TOMLDecodeError"),
    ):
        mod = sys.modules.get(module)
        if mod is not None and isinstance(getattr(mod, name, None), type):
            errors.append(getattr(mod, name))
    return tuple(errors)


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _os_error_line(exc: OSError) -> str:
    name = getattr(exc, "filename", None)
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        what = {
            errno.ENOSPC: "no space left on the device",
            errno.EFBIG: "file too large (a file-size limit was reached)",
            errno.EDQUOT: "disk quota exceeded",
        }[exc.errno]
        where = f" writing {name}" if name else ""
        return f"{what}{where}; the partial output was removed."
    if exc.errno == errno.ELOOP:
        return f"too many levels of symbolic links (a symlink loop): {name or exc}"
    if exc.strerror:
        return f"{exc.strerror}: {name}" if name else exc.strerror
    return str(exc)


@contextlib.contextmanager
def user_errors(*, as_json: bool | None = None) -> Iterator[None]:
    """Turn user errors into one stderr line and exit status 2.

    Caught: the toolkit's :class:`~pacbound.exceptions.TradeoffError`; operating-system
    errors (missing file, permission, full disk, file-size limit, symlink loop); and the
    errors of a malformed input file (not UTF-8, bad JSON, truncated pickle, zip, safetensors
    or parquet file). A ``KeyboardInterrupt`` exits with status 130.

    With ``as_json`` (by default: whether the running command was given ``--json``) the error
    is also printed on stdout as one JSON object, ``{"error": ..., "input": ..., "value": ..., "allowed": ...}`` (see
    :func:`error_object`), so that scripts reading stdout get JSON whatever happens.
    """
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        text = _error_text(exc)
        if text is None:
            raise
        typer.echo(f"error: {text}", err=True)
        if _json_requested() if as_json is None else as_json:
            print_json(error_object(text))
        raise typer.Exit(EXIT_USAGE) from None


def _json_requested() -> bool:
    """Whether the running command was given ``--json``."""
    ctx = _current_context()
    params = getattr(ctx, "params", None) or {}
    return any(bool(params.get(k)) for k in ("as_json", "json_out", "json"))


def _error_text(exc: BaseException) -> str | None:
    """The one line a user error prints, or None for an error that is a bug (re-raised)."""
    if isinstance(exc, TradeoffError):
        return _one_line(str(exc), 2000)
    if isinstance(exc, OSError):
        return _one_line(_os_error_line(exc))
    if isinstance(exc, RuntimeError) and "symlink loop" in str(exc).lower():
        return _one_line(str(exc))
    if isinstance(exc, _bad_file_errors()):
        if isinstance(exc, UnicodeDecodeError):
            return _one_line(f"an input file is not UTF-8 text ({exc.reason} at byte {exc.start})")
        return _one_line(f"an input file is malformed: {type(exc).__name__}: {exc}")
    return None


_TEMPLATE = re.compile(
    r"`(?P<input>[^`]+)`[^;]*? must (?:be )?(?P<allowed>[^;]+?);\s*got (?P<value>.+?)\.?$"
)
_FILE_PREFIX = re.compile(r"^(?P<input>[^\s:][^:]*\.[A-Za-z0-9]+|/[^:]+):\s")


def error_object(text: str) -> dict[str, Any]:
    """An error line as a JSON-ready object: ``error`` (the line), and where the toolkit's
    message template gives them, ``input`` (the argument or file), ``value`` (what was given)
    and ``allowed`` (what is allowed); None where the message does not say."""
    out: dict[str, Any] = {"error": text, "input": None, "value": None, "allowed": None}
    m = _TEMPLATE.search(text)
    if m is not None:
        out.update(input=m["input"], allowed=m["allowed"].strip(), value=m["value"].strip())
        return out
    m = _FILE_PREFIX.match(text)
    if m is not None:
        out["input"] = m["input"]
    return out


def _current_context() -> Any:
    try:  # typer >= 0.2x vendors click as typer._click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer on top of click
        from click import get_current_context
    return get_current_context(silent=True)


def _refuse_nan(kwargs: dict[str, Any]) -> None:
    """Refuse a NaN given to a float option or argument of the running command."""
    for key, value in kwargs.items():
        if isinstance(value, float) and math.isnan(value):
            flag = key
            ctx = _current_context()
            for param in ctx.command.params if ctx is not None else ():
                if param.name == key:
                    flag = param.opts[0] if param.opts else key
            raise InvalidParameterError(f"`{flag}` must be a number; got nan.")


def guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command body: NaN options refused, library warnings printed as one
    ``warning:`` line each on stderr, user errors as one ``error:`` line and exit status 2.

    :func:`make_app`'s apps apply it to every command they register.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with user_errors(), warnings_to_stderr():
            _refuse_nan(kwargs)
            return func(*args, **kwargs)

    return wrapper


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


_TOOLKIT_DIRS = tuple(
    str(Path(__file__).resolve().parents[2] / pkg) for pkg in ("pacbound", "measurement", "fits")
)


def _shown(w: warnings.WarningMessage, categories: tuple[type[Warning], ...]) -> bool:
    if categories:
        return issubclass(w.category, categories)
    if issubclass(w.category, UserWarning):
        return True
    # a RuntimeWarning is shown when the toolkit raised it (numpy's divide-by-zero are not)
    return issubclass(w.category, RuntimeWarning) and str(w.filename).startswith(_TOOLKIT_DIRS)


@contextlib.contextmanager
def warnings_to_stderr(*categories: type[Warning]) -> Iterator[None]:
    """Record the warnings raised in the block; afterwards print each distinct one as one
    ``warning:`` line on stderr.

    Printed: the warnings of ``categories``; by default every ``UserWarning`` and the
    ``RuntimeWarning``s raised by the toolkit itself. Nothing is printed when the block fails
    with an error (exit status 2), so that a failing command prints its one error line only.
    """
    failed = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except typer.Exit as exc:
            failed = exc.exit_code == EXIT_USAGE
            raise
        except BaseException:
            failed = True
            raise
        finally:
            seen: set[str] = set()
            for w in caught if not failed else ():
                text = _one_line(str(w.message), 2000)
                if _shown(w, categories) and text not in seen:
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
            value = float(item)
            if math.isnan(value):
                raise ValueError(item)
            out.append(value)
        except ValueError:
            raise InvalidParameterError(
                f"`{name}` must be a number or a comma-separated list of numbers; got {item!r}."
            ) from None
    return out


def parse_int_list(text: str, name: str) -> list[int]:
    """Parse a comma-separated list of non-negative integers (seeds) given for ``name``."""
    out = []
    for item in split_names(str(text)) or [str(text)]:
        if not item.isdigit():
            raise InvalidParameterError(
                f"`{name}` must be a non-negative integer or a comma-separated list of them "
                f"(e.g. 0,1,2); got {item!r}."
            )
        out.append(int(item))
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
        register = super().command(*args, **kwargs)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            register(guarded(func))
            return func

        return decorator


def make_app(**kwargs: Any) -> typer.Typer:
    """A Typer app with the toolkit's conventions.

    No shell-completion options; help rendered in rich mode, with the lines of each prose
    paragraph joined so that the terminal wraps them (indented example lines are kept). Every
    command body runs inside :func:`guarded`: bad input exits with status 2 and one line on
    stderr, library warnings print as one ``warning:`` line each.
    """
    kwargs.setdefault("add_completion", False)
    kwargs.setdefault("rich_markup_mode", "rich")
    return _ToolkitTyper(**kwargs)
