"""The numeric side of the tradeoff: d*(n) by bounded search, vectorised over budgets.

Where the first-order condition has no closed form, d*(n) = argmin_d B(d, n) is found inside a
difficulty range [d_lo, d_hi] for every budget at once:

1. B is evaluated on a grid of d (geometric when d_lo > 0) for all n (one broadcast call);
2. the grid minimiser brackets a sign change of ∂B/∂d (- then +), which Chandrupatla's method
   (:func:`scipy.optimize.elementwise.find_root`) refines to the last bits of float64; where the
   sign change is not where it should be, a three-point minimisation bracket goes to
   :func:`scipy.optimize.elementwise.find_minimum` instead;
3. a minimiser on the edge of the range (∂B/∂d does not change sign there) is reported as not
   bracketed, never extrapolated silently.

Functions here take the lambdified callables ``f(d, n, *params)`` of a
:class:`~pacbound._derivation.TradeoffDerivation`, with the parameter values in its order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pacbound.exceptions import InvalidParameterError
from pacbound.support._validation import check_in_interval, check_positive_int

__all__ = [
    "DEFAULT_D_RANGE",
    "DStarSolution",
    "check_d_range",
    "check_params",
    "minimise_over_d",
]

#: The difficulty range searched when none is given (12 decades around 1).
DEFAULT_D_RANGE: tuple[float, float] = (1e-6, 1e6)
DEFAULT_GRID_SIZE = 513

Fn = Callable[..., Any]


def check_params(
    parameters: Sequence[str], values: Mapping[str, Any], *, what: str = "B(d, n)"
) -> tuple[float, ...]:
    """Return the parameter values in the order of ``parameters``, checked.

    Every parameter is a positive finite number; ``delta`` lies in (0, 1).
    """
    unknown = sorted(set(values) - set(parameters))
    if unknown:
        listed = ", ".join(parameters) or "none"
        raise InvalidParameterError(
            f"`{unknown[0]}` must be a parameter of {what} ({listed}); got {unknown[0]}="
            f"{values[unknown[0]]!r}."
        )
    missing = [p for p in parameters if p not in values]
    if missing:
        raise InvalidParameterError(
            f"`{missing[0]}` must be given (a positive number) to evaluate {what}; "
            f"got no value (parameters: {', '.join(parameters)})."
        )
    out = []
    for name in parameters:
        value = values[name]
        if np.ndim(value) != 0:
            raise InvalidParameterError(f"`{name}` must be a single number; got {value!r}.")
        if name == "delta":
            arr = check_in_interval(value, name, 0.0, 1.0, closed="neither", allow_nan=False)
        else:
            arr = check_in_interval(value, name, 0.0, math.inf, closed="neither", allow_nan=False)
        out.append(float(arr))
    return tuple(out)


def check_d_range(d_range: Any) -> tuple[float, float]:
    """Return ``d_range`` as a float pair (lo, hi) with lo < hi, both finite."""
    try:
        lo, hi = (float(v) for v in d_range)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"`d_range` must be a pair of numbers (lo, hi) with lo < hi; got {d_range!r}."
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InvalidParameterError(
            f"`d_range` must be a pair of finite numbers (lo, hi) with lo < hi; got {d_range!r}."
        )
    return lo, hi


def _grid(lo: float, hi: float, size: int) -> NDArray[np.float64]:
    return np.geomspace(lo, hi, size) if lo > 0 else np.linspace(lo, hi, size)


def minimise_over_d(
    B: Fn,
    foc: Fn,
    n: NDArray[np.float64],
    params: tuple[float, ...],
    d_range: tuple[float, float],
    *,
    grid_size: int = DEFAULT_GRID_SIZE,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
    """Minimise B(d, n) over d in ``d_range`` for every n (a 1-D float64 array).

    Returns
    -------
    d_star, bracketed, B_min : ndarray
        The minimiser (the edge value where not bracketed; NaN where B is nowhere finite),
        whether ∂B/∂d changes sign from - to + there (an interior minimum) and B at d_star.
    """
    from scipy.optimize import elementwise

    size = check_positive_int(grid_size, "grid_size", minimum=8)
    lo, hi = d_range
    grid = _grid(lo, hi, size)
    m = n.size
    with np.errstate(all="ignore"):
        vals = np.broadcast_to(np.asarray(B(grid[None, :], n[:, None], *params), float), (m, size))
        vals = np.where(np.isfinite(vals), vals, np.inf)
        i = np.argmin(vals, axis=1)
        rows = np.arange(m)
        finite = np.isfinite(vals[rows, i])
        left, mid, right = grid[np.maximum(i - 1, 0)], grid[i], grid[np.minimum(i + 1, size - 1)]

        def f(x: Any, nn: Any) -> NDArray[np.float64]:
            return np.broadcast_to(np.asarray(foc(x, nn, *params), float), np.shape(x))

        f_left, f_mid, f_right = f(left, n), f(mid, n), f(right, n)
        d_star = np.where(finite, mid, np.nan)
        bracketed = np.zeros(m, dtype=bool)
        # Root brackets [a, b] with foc(a) < 0 < foc(b), next to the grid minimiser.
        at_root = finite & (f_mid == 0)
        use_right = finite & (f_mid < 0) & (f_right > 0) & (i < size - 1)
        use_left = finite & (f_mid > 0) & (f_left < 0) & (i > 0)
        a = np.where(use_right, mid, left)
        b = np.where(use_right, right, mid)
        rooted = use_right | use_left
        bracketed |= at_root
        if rooted.any():
            res = elementwise.find_root(f, (a[rooted], b[rooted]), args=(n[rooted],))
            ok = res.success
            idx = np.flatnonzero(rooted)
            d_star[idx[ok]] = res.x[ok]
            bracketed[idx[ok]] = True
        # Interior grid minimisers whose neighbours do not show the sign change: minimise B.
        interior = finite & ~bracketed & (i > 0) & (i < size - 1)
        if interior.any():
            idx = np.flatnonzero(interior)

            def g(x: Any, nn: Any) -> NDArray[np.float64]:
                return np.broadcast_to(np.asarray(B(x, nn, *params), float), np.shape(x))

            res = elementwise.find_minimum(g, (left[idx], mid[idx], right[idx]), args=(n[idx],))
            ok = res.success
            d_star[idx[ok]] = res.x[ok]
            bracketed[idx] = True  # the grid bracket holds an interior minimum either way
        B_min = np.where(
            np.isfinite(d_star),
            np.broadcast_to(np.asarray(B(d_star, n, *params), float), (m,)),
            np.nan,
        )
    return d_star, bracketed, B_min


@dataclass(frozen=True)
class DStarSolution:
    """The optimal difficulty d*(n) on a vector of budgets.

    Attributes
    ----------
    n : ndarray
        The budgets.
    d_star : ndarray
        argmin_d B(d, n). Where ``bracketed`` is False it is not a minimiser: the edge of
        ``d_range`` at which a numeric search ended (NaN where B is nowhere finite), or the
        value of a closed form that lies outside d > 0 or ``d_range``.
    bracketed : ndarray of bool
        True where d* is an interior minimiser (inside ``d_range``, and inside the domain
        d > 0 for a closed form).
    B_min : ndarray
        B(d*, n).
    dd_dn : ndarray
        dd*/dn at each budget (the derivative of the closed form, or -B_dn/B_dd at d*).
    method : str
        "closed form" or "numeric".
    d_range : tuple of float or None
        The difficulty range searched (None for a closed form without a range).
    params : dict
        The parameter values used.
    """

    n: NDArray[np.float64]
    d_star: NDArray[np.float64]
    bracketed: NDArray[np.bool_]
    B_min: NDArray[np.float64]
    dd_dn: NDArray[np.float64]
    method: str
    d_range: tuple[float, float] | None
    params: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        where = "" if self.d_range is None else f" in d_range [{self.d_range[0]:g}, "
        where += "" if self.d_range is None else f"{self.d_range[1]:g}]"
        params = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        lines = [f"d*(n) ({self.method}{where}; {params})"]
        lines.append(f"  {'n':>14}  {'d*':>16}  {'B(d*, n)':>14}  {'dd*/dn':>12}")
        for n, d, ok, b, s in zip(
            self.n, self.d_star, self.bracketed, self.B_min, self.dd_dn, strict=True
        ):
            tail = "" if ok else "   not bracketed (at the edge of the range)"
            lines.append(f"  {n:>14.6g}  {d:>16.10g}  {b:>14.6g}  {s:>12.4g}{tail}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: one row per budget, plus the method, range and parameters."""
        rows = [
            {
                "n": float(n),
                "d_star": float(d),
                "bracketed": bool(ok),
                "B_min": float(b),
                "dd_dn": float(s),
            }
            for n, d, ok, b, s in zip(
                self.n, self.d_star, self.bracketed, self.B_min, self.dd_dn, strict=True
            )
        ]
        return {
            "method": self.method,
            "d_range": None if self.d_range is None else list(self.d_range),
            "params": dict(self.params),
            "rows": rows,
        }


def as_budgets(n: ArrayLike) -> tuple[NDArray[np.float64], tuple[int, ...]]:
    """Check budgets (positive, finite) and return them flattened, with the input shape."""
    arr = check_in_interval(n, "n", 0.0, math.inf, closed="neither", allow_nan=False)
    return np.atleast_1d(arr).ravel(), np.shape(arr)
