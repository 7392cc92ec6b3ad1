"""The tradeoff model: its families, the data it is fitted to, and its optimum d*(n).

- ``_families``: :class:`ModelSpec` (which gap, complexity and extrapolation forms) and
  :class:`TradeoffModel` (a spec bound to data: parameters, bounds, grids, evaluation).
- ``_cells``: from the runs table to :class:`FitData`: the target, (d, n) cells, weights.
- ``_dstar``: d*(n) in closed form where it exists, else a bounded search; training surfaces.
"""

from __future__ import annotations

from pacbound.support import lazy_exports

EXPORTS: dict[str, str] = {
    "ModelSpec": "fits.model._families",
    "TradeoffModel": "fits.model._families",
    "PARAM_DOC": "fits.model._families",
    "FitData": "fits.model._cells",
    "CellSurface": "fits.model._cells",
    "prepare_data": "fits.model._cells",
    "inverse_variance_weights": "fits.model._cells",
    "Surfaces": "fits.model._dstar",
    "dstar": "fits.model._dstar",
    "make_surfaces": "fits.model._dstar",
    "predict_test": "fits.model._dstar",
    "shift_exponent": "fits.model._dstar",
    "argmin_over_d": "fits.model._dstar",
}
"""Public name -> the module that defines it (loaded on first use)."""

__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
