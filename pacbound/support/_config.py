"""Configs whose constraints are data: declare once, validate, serialise, and build CLI options.

A config is a frozen dataclass whose fields are made with :func:`config_field`. Each field's
``metadata`` holds its constraint (the model is sklearn's ``_parameter_constraints`` and peft's
``LoraConfig`` field metadata):

- ``help``: one sentence, shown by ``--help``;
- ``choices``: the allowed values (strings, written once here and nowhere else);
- ``interval``: an :class:`Interval` for a real number;
- ``minimum``: an integer >= minimum;
- ``also``: further allowed values beside the constraint (e.g. ``0`` for "no bootstrap");
- ``nullable``: None is allowed (the default when the field's default is None);
- ``sequence``: the value is a non-empty sequence whose elements satisfy the constraint
  (stored as a tuple);
- ``boolean``: the value is True or False.

:func:`validate_config` checks every field from these declarations with one message template,
``"`<field>` must be <constraint>; got <value>."``, where the constraint text comes from
:func:`describe_constraint`; :class:`Config` runs it in ``__post_init__`` and adds the JSON
round trip. :func:`config_help` and :func:`config_option` turn a field into the help text (with
the choices) and the typer option of a command, so the CLI and the library share the
declaration and the argument name (``n_resamples`` is ``--n-resamples``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from pacbound.exceptions import InvalidParameterError

__all__ = [
    "Config",
    "Interval",
    "check_field",
    "config_field",
    "config_from_dict",
    "config_help",
    "config_option",
    "config_to_dict",
    "describe_constraint",
    "validate_config",
]

C = TypeVar("C", bound="Config")

_CONSTRAINT_KEYS = ("choices", "interval", "minimum", "boolean")


@dataclasses.dataclass(frozen=True)
class Interval:
    """A real interval with open or closed ends; NaN never belongs to it.

    Attributes
    ----------
    low, high : float
        The ends (``-inf``/``inf`` for none).
    closed : {"both", "left", "right", "neither"}
        Which ends belong to the interval.
    """

    low: float = -math.inf
    high: float = math.inf
    closed: str = "both"

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            return False
        v = float(value)
        if math.isnan(v):
            return False
        lo_ok = v >= self.low if self.closed in ("both", "left") else v > self.low
        hi_ok = v <= self.high if self.closed in ("both", "right") else v < self.high
        return lo_ok and hi_ok

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        lo = "-inf" if self.low == -math.inf else f"{self.low:g}"
        hi = "inf" if self.high == math.inf else f"{self.high:g}"
        return f"{left}{lo}, {hi}{right}"

    def outside(self) -> float:
        """A number just outside the interval (below it when it has a finite lower end)."""
        if self.low != -math.inf:
            return self.low if self.closed in ("right", "neither") else self.low - 1.0
        return self.high if self.closed in ("left", "neither") else self.high + 1.0


def config_field(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    choices: Sequence[Any] | None = None,
    interval: Interval | None = None,
    minimum: int | None = None,
    also: Sequence[Any] = (),
    nullable: bool | None = None,
    sequence: bool = False,
    boolean: bool = False,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field whose constraint is declared in its ``metadata`` (see module docstring).

    ``nullable`` defaults to ``default is None``.
    """
    if nullable is None:
        nullable = default is None
    metadata = {
        "help": help,
        "choices": None if choices is None else tuple(choices),
        "interval": interval,
        "minimum": minimum,
        "also": tuple(also),
        "nullable": nullable,
        "sequence": sequence,
        "boolean": boolean,
    }
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def _element_text(meta: Mapping[str, Any]) -> str:
    if meta.get("choices") is not None:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    if meta.get("interval") is not None:
        return f"in {meta['interval']}"
    if meta.get("minimum") is not None:
        return f"an integer >= {meta['minimum']}"
    if meta.get("boolean"):
        return "True or False"
    return "any value"


def describe_constraint(meta: Mapping[str, Any]) -> str:
    """The constraint of a field in words, e.g. ``"one of 'auto', 'seeds', 'wild'"``."""
    text = _element_text(meta)
    if meta.get("sequence"):
        text = f"a non-empty list of values {text}" if meta.get("interval") else f"a list of {text}"
    also = [repr(a) for a in meta.get("also", ())]
    if also:
        text = " or ".join([*also, text])
    if meta.get("nullable"):
        text += " or None"
    return text


def _constrained(meta: Mapping[str, Any]) -> bool:
    return any(meta.get(k) is not None and meta.get(k) is not False for k in _CONSTRAINT_KEYS)


def _fail(name: str, meta: Mapping[str, Any], value: Any) -> InvalidParameterError:
    return InvalidParameterError(f"`{name}` must be {describe_constraint(meta)}; got {value!r}.")


def _check_element(name: str, meta: Mapping[str, Any], value: Any, shown: Any) -> Any:
    if meta.get("choices") is not None:
        if isinstance(value, str) and value in meta["choices"]:
            return value
        if not isinstance(value, str) and value in meta["choices"]:
            return value
        raise _fail(name, meta, shown)
    if meta.get("interval") is not None:
        if value not in meta["interval"]:
            raise _fail(name, meta, shown)
        return float(value)
    if meta.get("minimum") is not None:
        is_int = not isinstance(value, bool) and isinstance(value, (int, np.integer))
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value, is_int = int(value), True
        if not is_int or value < meta["minimum"]:
            raise _fail(name, meta, shown)
        return int(value)
    if meta.get("boolean"):
        if not isinstance(value, (bool, np.bool_)):
            raise _fail(name, meta, shown)
        return bool(value)
    return value


def check_field(name: str, meta: Mapping[str, Any], value: Any) -> Any:
    """Check one value against a field's declared constraint; return it normalised.

    Numbers become ``float``/``int``, sequences tuples. Raises
    :class:`~pacbound.exceptions.InvalidParameterError` with the one template.
    """
    if value is None:
        if meta.get("nullable"):
            return None
        raise _fail(name, meta, value)
    if any(value is a or (type(value) is type(a) and value == a) for a in meta.get("also", ())):
        return value
    if not _constrained(meta):
        return tuple(value) if meta.get("sequence") and not isinstance(value, str) else value
    if meta.get("sequence"):
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            raise _fail(name, meta, value)
        items = list(value)
        if not items:
            raise _fail(name, meta, value)
        return tuple(_check_element(name, meta, v, value) for v in items)
    return _check_element(name, meta, value, value)


def validate_config(config: Any) -> None:
    """Check every declared field of a frozen dataclass and store the normalised values."""
    for f in dataclasses.fields(config):
        if "help" not in f.metadata:
            continue
        value = check_field(f.name, f.metadata, getattr(config, f.name))
        object.__setattr__(config, f.name, value)


def config_to_dict(config: Any) -> dict[str, Any]:
    """The fields of a config as a JSON-safe dict (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def config_from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Rebuild a config from :func:`config_to_dict`'s output (validated again)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InvalidParameterError(
            f"`{cls.__name__}` fields must be among {sorted(names)}; got unknown {unknown}."
        )
    return cls(**dict(data))


class Config:
    """Mix-in for a frozen dataclass config: validation from the declarations, JSON round trip.

    A subclass with cross-field rules overrides ``__post_init__``, calls
    ``super().__post_init__()`` first, then checks them.
    """

    def __post_init__(self) -> None:
        validate_config(self)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-safe dict."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Rebuild from :meth:`to_dict`'s output."""
        return config_from_dict(cls, data)

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


def _field(cls: type, name: str) -> dataclasses.Field[Any]:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise InvalidParameterError(f"`name` must be a field of {cls.__name__}; got {name!r}.")


def config_help(cls: type, name: str, extra: str = "") -> str:
    """The help text of a config field for ``--help``: its sentence plus the allowed values."""
    meta = _field(cls, name).metadata
    text = meta["help"].rstrip()
    if extra:
        text = f"{text} {extra.strip()}"
    if meta.get("choices") is not None:
        text += " One of: " + "|".join(str(c) for c in meta["choices"]) + "."
    elif meta.get("interval") is not None or meta.get("minimum") is not None:
        text += f" Must be {describe_constraint({**meta, 'nullable': False})}."
    return text


def config_option(cls: type, name: str, *param_decls: str, extra: str = "", **kwargs: Any) -> Any:
    """A typer Option for a config field: flag ``--<name with dashes>``, default, help, choices.

    ``param_decls`` add short aliases (``"-n"``); a boolean field gets ``--x/--no-x``.
    ``kwargs`` go to :func:`typer.Option` (e.g. a different ``default`` for a text form).
    """
    import typer

    f = _field(cls, name)
    flag = "--" + name.replace("_", "-")
    if f.metadata.get("boolean"):
        flag = f"{flag}/--no-{name.replace('_', '-')}"
    if "default" in kwargs:
        default = kwargs.pop("default")
    elif f.default is not dataclasses.MISSING:
        default = f.default
    else:
        default = None
    return typer.Option(default, flag, *param_decls, help=config_help(cls, name, extra), **kwargs)
