r"""One interval type for every interval a fit reports, and the percentile rule that makes them.

:class:`ConfidenceInterval` (scipy's ``ConfidenceInterval(low, high)`` with its level and method)
is the single shape of an interval in :mod:`fits`: bootstrap intervals of the parameters, of
d*(n) and of the shift exponent, and profile-likelihood intervals of the shape parameters.

The bootstrap intervals are percentile intervals: for draws :math:`x_1, \dots, x_D` and level
:math:`1-\alpha`, :math:`[\hat q_{\alpha/2}, \hat q_{1-\alpha/2}]` with :math:`\hat q` numpy's
default (linear) sample quantile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pacbound.exceptions import InvalidParameterError

__all__ = ["PERCENTILE", "PROFILE", "ConfidenceInterval", "check_level", "percentile_bounds"]

PERCENTILE = "bootstrap percentile"
PROFILE = "profile likelihood"


@dataclass(frozen=True)
class ConfidenceInterval:
    """A confidence interval ``[low, high]`` at a level, and how it was made.

    Attributes
    ----------
    low, high : float
        The ends (natural scale).
    level : float or None
        The confidence level in (0, 1) (None when not known, e.g. read from an old file).
    method : str
        How the interval was made: ``"bootstrap percentile"`` or ``"profile likelihood"``.
    low_open, high_open : bool
        True where the end is the parameter's bound rather than a located end (a profile that
        stays inside the interval up to the bound): the interval extends at least that far.
    """

    low: float
    high: float
    level: float | None = None
    method: str = PERCENTILE
    low_open: bool = False
    high_open: bool = False

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (ends included)."""
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "method": self.method,
            "low_open": self.low_open,
            "high_open": self.high_open,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ConfidenceInterval:
        """Rebuild from :meth:`to_dict` output (missing level/method/open flags take defaults)."""
        return cls(
            float(obj["low"]),
            float(obj["high"]),
            None if obj.get("level") is None else float(obj["level"]),
            str(obj.get("method", PERCENTILE)),
            bool(obj.get("low_open", False)),
            bool(obj.get("high_open", False)),
        )

    def __str__(self) -> str:
        low = f"{'<=' if self.low_open else ''}{self.low:.4g}"
        high = f"{'>=' if self.high_open else ''}{self.high:.4g}"
        level = "" if self.level is None else f"{self.level:.0%} "
        return f"[{low}, {high}] ({level}{self.method})"


def check_level(confidence_level: Any) -> float:
    """``confidence_level`` as a float in (0, 1), or InvalidParameterError naming the value."""
    try:
        level = float(confidence_level)
    except (TypeError, ValueError):
        level = math.nan
    if not 0.0 < level < 1.0:
        raise InvalidParameterError(
            f"`confidence_level` must be a number in (0, 1); got {confidence_level!r}."
        )
    return level


def percentile_bounds(
    draws: ArrayLike, confidence_level: float, axis: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""The percentile interval ends of ``draws`` along ``axis``: :math:`\hat q_{\alpha/2}` and
    :math:`\hat q_{1-\alpha/2}` with :math:`\alpha = 1 - ` ``confidence_level``."""
    alpha = 1.0 - check_level(confidence_level)
    lo, hi = np.quantile(np.asarray(draws, dtype=float), [alpha / 2, 1 - alpha / 2], axis=axis)
    return lo, hi
