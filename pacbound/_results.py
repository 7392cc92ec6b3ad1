"""The result of a PAC-Bayes bound: its value and every piece needed to audit it.

A bound is a number *and* a confidence statement. :class:`BoundResult` keeps both: the value,
the inputs it was evaluated at, the complexity term, every union bound that was charged (grid
label and size) and the failure probability that each stage was left with, so that "holds with
probability 1 - delta" can be checked by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pacbound.support._io import to_jsonable

__all__ = ["BoundResult"]


def _fmt(value: Any) -> str:
    """A short human-readable rendering of a float or an array."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        v = arr.item()
        if isinstance(v, float):
            return f"{v:.12g}"
        return str(v)
    if arr.size == 0:
        return "[] (empty)"
    if arr.dtype.kind in "fiu":
        finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
        if finite.size == 0:
            return f"array{arr.shape} (no finite values)"
        return (
            f"array{arr.shape}: min {finite.min():.6g}, median {np.median(finite):.6g}, "
            f"max {finite.max():.6g}"
        )
    return f"array{arr.shape}"


@dataclass(frozen=True)
class BoundResult:
    """A PAC-Bayes (or test-set) bound with its pieces.

    Attributes
    ----------
    name : str
        Which bound: ``"mcallester"``, ``"kl"``, ``"catoni"``, ``"linear_lambda"``,
        ``"thiemann"``, ``"f_quad"``, ``"dziugaite_roy"``, ``"mc_certificate"`` or
        ``"test_set"``.
    value : float or ndarray
        The bound on the true risk, broadcast over the inputs (a float for scalar inputs).
        Values at or above the loss range are vacuous.
    emp_risk, kl, n, delta : float or ndarray
        The inputs: empirical (Gibbs) risk, KL(Q||P) in nats, size of the bound set, and the
        total failure probability (the bound holds with probability at least ``1 - delta``).
    complexity : float or ndarray
        The bound's complexity term; its meaning is given in each bound's docstring (e.g. the
        kl budget ``c`` with ``R <= kl^-1(emp_risk, c)``, or the square-root gap of McAllester).
    deltas : dict of str to float
        The failure probability left to each stage: ``"total"`` is ``delta``; each union bound
        (in the order charged) maps to the failure probability of one choice after it;
        ``"bound"`` is the delta plugged into the formula. Scalars when the deltas are scalars.
    union : dict of str to int
        Every union bound charged: grid label -> number of choices, the caller's grids first,
        then the bound's own (e.g. the Catoni ``C`` grid). The formula's delta is ``delta``
        divided by the product of these sizes.
    grid : tuple of float or None
        The grid of the bound's own free parameter (``C``, ``lambda``), fixed in advance.
    params : dict
        Other settings and the chosen parameter values (e.g. ``xi``, the ``C`` attaining the
        minimum, ``lambda*``).
    """

    name: str
    value: Any
    emp_risk: Any
    kl: Any
    n: Any
    delta: Any
    complexity: Any
    deltas: Mapping[str, Any] = field(default_factory=dict)
    union: Mapping[str, int] = field(default_factory=dict)
    grid: tuple[float, ...] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """Broadcast shape of the value (``()`` for a scalar result)."""
        return np.shape(self.value)

    def __float__(self) -> float:
        if np.ndim(self.value) != 0:
            raise TypeError(f"a {self.shape} array of bound values has no single float value")
        return float(self.value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain objects (NaN and infinities become ``None``; arrays become lists)."""
        return to_jsonable(
            {
                "name": self.name,
                "value": self.value,
                "emp_risk": self.emp_risk,
                "kl": self.kl,
                "n": self.n,
                "delta": self.delta,
                "complexity": self.complexity,
                "deltas": dict(self.deltas),
                "union": dict(self.union),
                "grid": list(self.grid) if self.grid is not None else None,
                "params": dict(self.params),
            }
        )

    def records(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per element of the broadcast inputs (row-major order).

        Every array-valued field is indexed at that element; scalar fields repeat. For a
        scalar result this is ``[self.to_dict()]``.
        """
        shape = self.shape
        if shape == ():
            return [self.to_dict()]
        out = []
        for index in np.ndindex(*shape):
            out.append(to_jsonable(self._element(index, shape)))
        return out

    def _element(self, index: tuple[int, ...], shape: tuple[int, ...]) -> dict[str, Any]:
        def pick(value: Any) -> Any:
            arr = np.asarray(value)
            if arr.ndim == 0 or arr.dtype == object:
                return value
            try:
                return np.broadcast_to(arr, shape)[index].item()
            except ValueError:
                return value

        return {
            "name": self.name,
            "value": pick(self.value),
            "emp_risk": pick(self.emp_risk),
            "kl": pick(self.kl),
            "n": pick(self.n),
            "delta": pick(self.delta),
            "complexity": pick(self.complexity),
            "deltas": {k: pick(v) for k, v in self.deltas.items()},
            "union": dict(self.union),
            "grid": list(self.grid) if self.grid is not None else None,
            "params": {k: pick(v) for k, v in self.params.items()},
        }

    def __str__(self) -> str:
        lines = [f"{self.name} bound: {_fmt(self.value)}"]
        lines.append(
            f"  emp_risk={_fmt(self.emp_risk)}  kl={_fmt(self.kl)}  n={_fmt(self.n)}  "
            f"delta={_fmt(self.delta)}"
        )
        lines.append(f"  complexity: {_fmt(self.complexity)}")
        if self.union:
            charged = ", ".join(f"{label} ({size})" for label, size in self.union.items())
            lines.append(f"  union bounds: {charged}")
        for label, value in self.deltas.items():
            lines.append(f"  delta[{label}] = {_fmt(value)}")
        if self.grid is not None:
            g = self.grid
            shown = ", ".join(f"{v:.6g}" for v in g[:6]) + (", ..." if len(g) > 6 else "")
            lines.append(f"  grid ({len(g)} values): {shown}")
        for key, value in self.params.items():
            lines.append(f"  {key} = {_fmt(value) if not isinstance(value, str) else value}")
        return "\n".join(lines)
