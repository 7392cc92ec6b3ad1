"""The analyses a user runs: fit the tradeoff, test its robustness, choose data for a budget.

- ``_config``: :class:`FitConfig`, every setting of the fit with its allowed values, declared
  once (the ``tradeoff fit`` options are built from it).
- ``_fit``: :func:`fit_tradeoff`, the one call from a runs table to a :class:`~fits.FitResult`
  (estimate, then assemble).
- ``_averaging``: several model families: AICc weights and a model-averaged d*(n).
- ``_robustness``: how d*(n) moves when the difficulty-bin thresholds move.
- ``_select``: N training examples at the predicted d*(N) from a scored pool.
"""

from __future__ import annotations

from pacbound.support import lazy_exports

EXPORTS: dict[str, str] = {
    "fit_tradeoff": "fits.analysis._fit",
    "FitConfig": "fits.analysis._config",
    "TRAIN_MODELS": "fits.analysis._config",
    "threshold_robustness": "fits.analysis._robustness",
    "RobustnessResult": "fits.analysis._robustness",
    "select_examples": "fits.analysis._select",
    "SelectionResult": "fits.analysis._select",
}
"""Public name -> the module that defines it (loaded on first use)."""

__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
