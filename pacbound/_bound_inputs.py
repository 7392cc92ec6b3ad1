"""Inputs and results shared by every PAC-Bayes bound: validation and union-bound bookkeeping.

Each bound function (:mod:`pacbound._bounds`, :mod:`pacbound._catoni`,
:mod:`pacbound._certificates`) validates its four common inputs with :func:`bound_inputs`,
charges the grids fixed in advance with :meth:`BoundInputs.split_delta` (the formula is
evaluated at :math:`\\delta / \\prod_i k_i`, and each grid's delta is recorded), and assembles
its :class:`~pacbound.BoundResult` with :func:`make_result`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pacbound._results import BoundResult
from pacbound.exceptions import InvalidParameterError
from pacbound.support._validation import check_broadcast, check_in_interval, check_integer_array

__all__ = ["BoundInputs", "bound_inputs", "check_union", "make_result"]


def check_union(union: Mapping[str, int] | None) -> dict[str, int]:
    """Validate a ``{grid label: grid size}`` mapping (None means no union bound)."""
    if union is None:
        return {}
    if not isinstance(union, Mapping):
        raise InvalidParameterError(
            f"`union` must be a mapping of grid labels to integer sizes >= 1; got {union!r}."
        )
    out: dict[str, int] = {}
    for label, size in union.items():
        ok_size = (isinstance(size, (int, np.integer)) and not isinstance(size, bool)) or (
            isinstance(size, (float, np.floating)) and float(size).is_integer()
        )
        if not isinstance(label, str) or not label or not ok_size or int(size) < 1:
            raise InvalidParameterError(
                f"`union` must map grid labels (non-empty str) to integer sizes >= 1; "
                f"got {label!r}: {size!r}."
            )
        out[label] = int(size)
    return out


@dataclass(frozen=True)
class BoundInputs:
    """Validated inputs of a bound: float64 arrays (not yet broadcast) and the union bounds."""

    emp_risk: NDArray[np.float64]
    kl: NDArray[np.float64]
    n: NDArray[np.float64]
    delta: NDArray[np.float64]
    union: dict[str, int]

    @property
    def scalar(self) -> bool:
        """Whether all four inputs are scalars (results are then Python floats)."""
        return all(a.ndim == 0 for a in (self.emp_risk, self.kl, self.n, self.delta))

    def split_delta(
        self, own: Mapping[str, int] | None = None
    ) -> tuple[dict[str, int], dict[str, Any], NDArray[np.float64]]:
        """Charge the caller's grids then ``own``: return (union, deltas, delta for the formula)."""
        union = dict(self.union)
        for label, size in (own or {}).items():
            key = label
            while key in union:  # keep both entries if the caller used the same label
                key = f"{key}'"
            union[key] = size
        deltas: dict[str, Any] = {"total": self.output(self.delta)}
        current = self.delta
        for label, size in union.items():
            current = current / size
            deltas[label] = self.output(current)
        deltas["bound"] = self.output(current)
        return union, deltas, current

    def output(self, value: Any) -> Any:
        """A Python scalar for 0-d values of scalar inputs, else an array (ints stay ints)."""
        arr = np.asarray(value)
        if arr.dtype.kind not in "iub":
            arr = arr.astype(np.float64)
        if self.scalar and arr.ndim == 0:
            return arr.item()
        return arr


def bound_inputs(
    emp_risk: ArrayLike,
    kl: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    union: Mapping[str, int] | None,
    *,
    risk_range: tuple[float, float] = (0.0, 1.0),
    min_n: int = 1,
) -> BoundInputs:
    """Validate the four common inputs (NaN passes through to NaN results)."""
    lo, hi = risk_range
    q = check_in_interval(emp_risk, "emp_risk", lo, hi)
    k = check_in_interval(kl, "kl", 0.0, math.inf)
    m = check_integer_array(n, "n", min_n)
    d = check_in_interval(delta, "delta", 0.0, 1.0, closed="neither")
    check_broadcast(emp_risk=q, kl=k, n=m, delta=d)
    return BoundInputs(q, k, m, d, check_union(union))


def make_result(
    name: str,
    inputs: BoundInputs,
    value: Any,
    complexity: Any,
    union: dict[str, int],
    deltas: dict[str, Any],
    *,
    grid: tuple[float, ...] | None = None,
    params: Mapping[str, Any] | None = None,
) -> BoundResult:
    """Assemble a :class:`BoundResult`, floats for scalar inputs."""
    out = inputs.output
    return BoundResult(
        name=name,
        value=out(value),
        emp_risk=out(inputs.emp_risk),
        kl=out(inputs.kl),
        n=out(inputs.n),
        delta=out(inputs.delta),
        complexity=out(complexity),
        deltas=deltas,
        union=union,
        grid=grid,
        params={
            k: (out(v) if isinstance(v, (np.ndarray, float)) else v)
            for k, v in (params or {}).items()
        },
    )
