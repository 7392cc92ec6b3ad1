"""Input validation helpers: convert, check, and say exactly what is wrong.

Messages follow one template: the argument in backticks, the constraint, then the value,
e.g. "`q` must be in [0, 1]; got 1.5." Array arguments report the first offending value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pacbound.exceptions import InvalidParameterError

__all__ = [
    "as_float_array",
    "check_broadcast",
    "check_choice",
    "check_in_interval",
    "check_integer_array",
    "check_positive_int",
]


def _first_bad(values: NDArray[np.float64], bad: NDArray[np.bool_]) -> float:
    return float(values[bad].flat[0])


def as_float_array(value: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``value`` as a float64 array, or raise naming ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"`{name}` must be a real number or an array of real numbers; got {value!r}."
        ) from exc
    return arr


def check_in_interval(
    value: ArrayLike,
    name: str,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    closed: str = "both",
    allow_nan: bool = True,
) -> NDArray[np.float64]:
    """Check that every (non-NaN) element lies in an interval and return a float64 array.

    Parameters
    ----------
    value : array_like
        The argument to check.
    name : str
        Its name, as the user would write it.
    low, high : float
        The interval ends.
    closed : {"both", "left", "right", "neither"}
        Which ends belong to the interval.
    allow_nan : bool
        NaN passes through unchanged when True (NaN in gives NaN out); it is an error otherwise.
    """
    arr = as_float_array(value, name)
    nan = np.isnan(arr)
    if nan.any() and not allow_nan:
        raise InvalidParameterError(f"`{name}` must not be NaN; got nan.")
    finite = arr[~nan]
    lo_ok = finite >= low if closed in ("both", "left") else finite > low
    hi_ok = finite <= high if closed in ("both", "right") else finite < high
    bad = ~(lo_ok & hi_ok)
    if bad.any():
        left = "[" if closed in ("both", "left") else "("
        right = "]" if closed in ("both", "right") else ")"
        lo_txt = "-inf" if low == -math.inf else f"{low:g}"
        hi_txt = "inf" if high == math.inf else f"{high:g}"
        raise InvalidParameterError(
            f"`{name}` must be in {left}{lo_txt}, {hi_txt}{right}; got {_first_bad(finite, bad)!r}."
        )
    return arr


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum`` or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise InvalidParameterError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    if value < minimum:
        raise InvalidParameterError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_integer_array(value: ArrayLike, name: str, minimum: int = 1) -> NDArray[np.float64]:
    """Return ``value`` as a float64 array of integers >= ``minimum``, or raise naming it."""
    arr = as_float_array(value, name)
    bad = ~(arr >= minimum) | (arr != np.floor(arr)) | ~np.isfinite(arr)
    if bad.any():
        raise InvalidParameterError(
            f"`{name}` must be an integer >= {minimum}; got {_first_bad(arr, bad)!r}."
        )
    return arr


def check_broadcast(**arrays: ArrayLike) -> tuple[int, ...]:
    """Return the common shape of the named arrays, or raise naming them and their shapes.

    Example message: "`emp_risk`, `kl` and `n` must broadcast together; got shapes (2,),
    (3,), ()."
    """
    shapes = [np.shape(a) for a in arrays.values()]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        names = [f"`{n}`" for n in arrays]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
        raise InvalidParameterError(
            f"{listed} must broadcast together; got shapes {', '.join(map(str, shapes))}."
        ) from None


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    options = list(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise InvalidParameterError(f"`{name}` must be one of {listed}; got {value!r}.")
    return value
