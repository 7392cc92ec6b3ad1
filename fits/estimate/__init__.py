"""Estimation: fitting a :class:`~fits.model.TradeoffModel` to data, and its uncertainty.

- ``_varpro``: variable projection (grid the shapes, solve the amplitudes exactly, refine).
- ``_search``: batched local searches over the shape parameters.
- ``_core``: :func:`fit_core`, the fit of one model to one data set (:class:`CoreFit`).
- ``_bootstrap``: refits on resampled seeds within cells, or a wild bootstrap.
- ``_baselines``: simpler models and AICc on one Gaussian likelihood.
- ``_crossval``: leave-one-budget-out and forward-chaining validation.
- ``_profile``: profile-likelihood intervals of the shape parameters.
- ``_lack_of_fit``: the pure-error lack-of-fit test (does the theory's form describe the runs?).
- ``_model_free``: d*(n) from the data alone (observed best, local parabola, edge flags).
- ``_interval``: :class:`ConfidenceInterval`, the one interval type, and the percentile rule.
"""

from __future__ import annotations

from pacbound.support import lazy_exports

EXPORTS: dict[str, str] = {
    "CoreFit": "fits.estimate._core",
    "fit_core": "fits.estimate._core",
    "cell_problem": "fits.estimate._core",
    "row_problem": "fits.estimate._core",
    "jacobian_covariance": "fits.estimate._core",
    "LOSSES": "fits.estimate._core",
    "Refusal": "fits.estimate._varpro",
    "ConfidenceInterval": "fits.estimate._interval",
    "BootstrapDraws": "fits.estimate._bootstrap",
    "BOOTSTRAP_METHODS": "fits.estimate._bootstrap",
    "fit_baselines": "fits.estimate._baselines",
    "gaussian_llf": "fits.estimate._baselines",
    "information_criteria": "fits.estimate._baselines",
    "cross_validate": "fits.estimate._crossval",
    "summarize_cv": "fits.estimate._crossval",
    "profile_intervals": "fits.estimate._profile",
    "ProfileResult": "fits.estimate._profile",
    "ParameterProfile": "fits.estimate._profile",
    "LackOfFit": "fits.estimate._lack_of_fit",
    "lack_of_fit": "fits.estimate._lack_of_fit",
    "ModelFreeDStar": "fits.estimate._model_free",
    "model_free_dstar": "fits.estimate._model_free",
}
"""Public name -> the module that defines it (loaded on first use)."""

__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
