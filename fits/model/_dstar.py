r"""The optimal difficulty d*(n): closed form where it exists, else a bounded search.

The predicted test metric at (d, n) is the training metric surface plus the fitted gap,
:math:`\hat L_{test}(d, n) = \hat L_{train}(d, n) + \hat r(d, n)`, and
:math:`d^*(n) = \arg\min_d \hat L_{test}(d, n)` over the **observed** difficulty range. When the
training metric is modelled as flat in d and the model has a closed form (McAllester gap, K and
T of one family), d* comes from it; otherwise a grid of 201 points locates the minimum and a
golden-section search refines it inside the neighbouring grid interval (vectorised over draws
and budgets). A minimum on the edge of the observed range is flagged ``bracketed = False`` and
reported at the edge: the data do not locate an optimum beyond what was observed.

The shift exponent :math:`\partial \log d^* / \partial \log n` is the least-squares slope of
:math:`\log d^*` on :math:`\log n` over the budgets (theory, power family:
:math:`\nu/(g/2 + b)`, i.e. :math:`1/(g + 2b)` at :math:`\nu = 1/2`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fits.model._cells import CellSurface, FitData
from fits.model._families import TradeoffModel

__all__ = ["Surfaces", "dstar", "make_surfaces", "shift_exponent"]

_GRID = 201
_GOLDEN_ITERS = 48
_INVPHI = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class Surfaces:
    """The per-cell quantities a prediction needs, as surfaces over (d, n).

    Attributes
    ----------
    train : CellSurface
        The training metric (batch axes: draws).
    flat_train : bool
        True when the training metric is modelled as flat in d (per-budget mean).
    K : CellSurface or None
        Measured complexity, when the model uses one.
    """

    train: CellSurface
    flat_train: bool
    K: CellSurface | None = None

    def take(self, index: object) -> Surfaces:
        return Surfaces(
            self.train.take(index), self.flat_train, None if self.K is None else self.K.take(index)
        )


def predict_test(
    model: TradeoffModel,
    theta: NDArray[np.float64],
    amps: NDArray[np.float64],
    surfaces: Surfaces,
    d: NDArray[np.float64],
    n: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Predicted test metric at points (d, n) of shape (P,) or (B, P): returns (B, P)."""
    theta = np.atleast_2d(theta)
    train = surfaces.train(d, n)
    q = train if model.spec.uses_train_risk else None
    K = surfaces.K(d, n) if surfaces.K is not None else None
    gap = model.predict(theta, amps, d, n, q, K)
    return gap + train


def dstar(
    model: TradeoffModel,
    theta: NDArray[np.float64],
    amps: NDArray[np.float64],
    surfaces: Surfaces,
    budgets: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.bool_], str]:
    """d*(n) for every fit (rows of ``theta``/``amps``) and budget.

    Returns
    -------
    value : ndarray (B, nb)
        d* inside the observed range (the edge when not bracketed).
    bracketed : ndarray of bool (B, nb)
    method : {"closed form", "bounded search"}
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    amps = np.atleast_2d(np.asarray(amps, dtype=float))
    budgets = np.asarray(budgets, dtype=float)
    lo, hi = model.d_range
    tol = 1e-6 * (hi - lo)
    if surfaces.flat_train and model.has_closed_form:
        raw = model.closed_form_dstar(theta, amps, budgets)
        raw = np.where(np.isnan(raw), lo, raw)
        value = np.clip(raw, lo, hi)
        return value, (raw > lo + tol) & (raw < hi - tol), "closed form"

    def fun(x: NDArray[np.float64], n: NDArray[np.float64]) -> NDArray[np.float64]:
        return predict_test(model, theta, amps, surfaces, x, n)

    value, bracketed = argmin_over_d(fun, len(theta), budgets, lo, hi)
    return value, bracketed, "bounded search"


def argmin_over_d(
    fun: Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]],
    batch: int,
    budgets: NDArray[np.float64],
    lo: float,
    hi: float,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Minimise ``fun(d, n)`` over d in [lo, hi] for every batch row and budget.

    ``fun`` takes points of shape (P,) (shared by the batch) or (batch, P) and returns
    (batch, P). A 201-point grid brackets the minimum; golden-section search refines it.
    """
    budgets = np.asarray(budgets, dtype=float)
    B, nb = batch, len(budgets)
    tol = 1e-6 * (hi - lo)
    grid = np.linspace(lo, hi, _GRID)
    f = fun(np.tile(grid, nb), np.repeat(budgets, _GRID))
    f = np.where(np.isfinite(f), f, np.inf).reshape(B, nb, _GRID)
    i = np.argmin(f, axis=-1)
    n_pts = np.broadcast_to(budgets, (B, nb))

    def fval(x: NDArray[np.float64]) -> NDArray[np.float64]:
        vals = fun(x, n_pts)
        return np.where(np.isfinite(vals), vals, np.inf)

    a = grid[np.clip(i - 1, 0, _GRID - 1)]
    b = grid[np.clip(i + 1, 0, _GRID - 1)]
    c = b - _INVPHI * (b - a)
    e = a + _INVPHI * (b - a)
    fc, fe = fval(c), fval(e)
    for _ in range(_GOLDEN_ITERS):
        left = fc < fe  # the minimum lies in [a, e]
        b = np.where(left, e, b)
        a = np.where(left, a, c)
        x_new = np.where(left, b - _INVPHI * (b - a), a + _INVPHI * (b - a))
        f_new = fval(x_new)
        c, e, fc, fe = (
            np.where(left, x_new, e),
            np.where(left, c, x_new),
            np.where(left, f_new, fe),
            np.where(left, fc, f_new),
        )
    value = (a + b) / 2.0
    f_grid = np.take_along_axis(f, i[..., None], axis=-1)[..., 0]
    value = np.where(fval(value) <= f_grid, value, grid[i])
    bracketed = (i > 0) & (i < _GRID - 1) & (value > lo + tol) & (value < hi - tol)
    return value, bracketed


def shift_exponent(
    values: NDArray[np.float64], budgets: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Least-squares slope of log d* on log n, per row of ``values`` (B, nb); NaN if d* <= 0."""
    values = np.atleast_2d(values)
    x = np.log(np.asarray(budgets, dtype=float))
    x = x - x.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(values)
    slope = (y - y.mean(axis=1, keepdims=True)) @ x / (x @ x)
    return np.where((values > 0).all(axis=1), slope, np.nan)


def make_surfaces(
    data: FitData,
    model: TradeoffModel,
    train_model: str,
    train_cells: NDArray[np.float64] | None = None,
    K_cells: NDArray[np.float64] | None = None,
) -> Surfaces:
    """Training-metric (and measured-K) surfaces, optionally per bootstrap draw."""
    tc = data.cells["train_mean"].to_numpy() if train_cells is None else train_cells
    if train_model == "linear":
        tc = _linear_in_d(data, tc)
    train = data.surface(tc)
    if train_model == "flat":
        flat = train.values.mean(axis=-2, keepdims=True)
        train = dataclasses.replace(train, values=np.broadcast_to(flat, train.values.shape).copy())
    K = None
    if model.spec.measured is not None:
        kc = data.cells["K_mean"].to_numpy() if K_cells is None else K_cells
        K = data.surface(kc, log=True)
    return Surfaces(train, train_model == "flat", K)


def _linear_in_d(data: FitData, cell_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per budget, the weighted least-squares line in d through the cell values (..., C)."""
    out = np.empty_like(np.asarray(cell_values, dtype=float))
    d, n, w = data.cell_d, data.cell_n, data.cell_weight
    for nb in data.n_levels:
        sel = n == nb
        ws = w[sel] / w[sel].sum()
        dm = ws @ d[sel]
        vals = cell_values[..., sel]
        vm = vals @ ws
        sdd = ws @ (d[sel] - dm) ** 2
        slope = ((vals - vm[..., None]) * (d[sel] - dm)) @ ws / sdd if sdd > 0 else 0.0 * vm
        out[..., sel] = vm[..., None] + np.asarray(slope)[..., None] * (d[sel] - dm)
    return out
