"""Fit the tradeoff to runs: :func:`fit_tradeoff`, the one call that does it all.

Pipeline: check and aggregate the runs (:mod:`fits.model`), bind the model to the data, fit by
variable projection (:func:`fits.estimate.fit_core`), refuse fits on a bound or with a vanished
amplitude, compute d*(n), bootstrap with refits, compare with baselines on AICc, cross-validate
over budgets (:mod:`fits.estimate`), and assemble the :class:`~fits.results.FitResult`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from fits.estimate._baselines import fit_baselines
from fits.estimate._bootstrap import BOOTSTRAP_METHODS, BootstrapDraws
from fits.estimate._core import LOSSES, fit_core, jacobian_covariance
from fits.estimate._crossval import cross_validate
from fits.exceptions import DegenerateBootstrapWarning, InsufficientDataError
from fits.model._cells import prepare_data
from fits.model._dstar import dstar, make_surfaces
from fits.model._families import ModelSpec, TradeoffModel
from fits.results._assemble import assemble_result
from fits.results._result import FitResult
from pacbound.support import Progress, check_choice, check_in_interval, check_positive_int, versions

__all__ = ["TRAIN_MODELS", "fit_tradeoff"]

TRAIN_MODELS = ("linear", "interpolate", "flat")


def fit_tradeoff(
    runs: pd.DataFrame,
    *,
    model: str | ModelSpec = "power",
    gap: str | None = None,
    rate: str | None = None,
    delta: float | None = None,
    loss: str = "linear",
    f_scale: float | None = None,
    target: str = "loss",
    weights: str = "auto",
    train_model: str = "linear",
    bounds: Mapping[str, tuple[float, float]] | None = None,
    grid: int | None = None,
    exclude: Iterable[str] = (),
    n_resamples: int = 1000,
    bootstrap: str = "auto",
    confidence_level: float = 0.95,
    cv: bool = True,
    cv_resamples: int = 200,
    baselines: bool = True,
    rng: int | np.random.Generator | None = 0,
    progress: bool = False,
) -> FitResult:
    """Fit the generalization–extrapolation tradeoff to runs and predict d*(n) with intervals.

    Parameters
    ----------
    runs : DataFrame
        The runs table of :func:`fits.load_runs` (canonical columns).
    model : str or ModelSpec, default "power"
        ``"<K>[,<T>]"`` with K in {power, exp, kl, sq_dist} and T in {power, exp}; see
        :class:`fits.ModelSpec`.
    gap : {"mcallester", "kl", "catoni"}, optional
        The form of the generalization gap (default McAllester).
    rate : {"sqrt", "free"}, optional
        ``free`` fits the budget exponent nu of n^-nu instead of fixing it at 1/2.
    delta : float, optional
        The bound's delta in the log terms (default 0.05).
    loss : {"linear", "soft_l1", "huber"}, default "linear"
        Robust losses use ``f_scale`` (default 1.4826 * MAD of the linear fit's residuals).
    target : {"loss", "error"}, default "loss"
        Fit cross-entropy losses, or 0-1 errors ``1 - accuracy`` (the paper's metric).
    weights : {"auto", "inverse-variance", "none"}, default "auto"
    train_model : {"linear", "interpolate", "flat"}, default "linear"
        How the training metric enters d* (predicted test = training surface + fitted gap):
        ``linear`` a weighted line in d per budget (smooth: noise in the cell means does not pin
        d* to observed difficulties), ``interpolate`` piecewise linear through the cell means,
        ``flat`` the per-budget mean (d* is then the theory's minimiser of gap + extrapolation,
        in closed form where one exists).
    bounds : mapping, optional
        Natural-scale bounds of shape parameters, e.g. ``{"b": (0.01, 10)}``.
    grid : int, optional
        Grid points per shape parameter (default 81/41/17/11 for 1/2/3/4 shapes).
    exclude : iterable of str
        Run ids to leave out (recorded).
    n_resamples : int, default 1000
        Bootstrap refits (0 for none).
    bootstrap : {"auto", "seeds", "wild"}, default "auto"
        ``auto`` resamples seeds within cells when every cell has two or more, else wild.
    confidence_level : float, default 0.95
    cv : bool, default True
        Leave-one-budget-out and forward-chaining validation (three or more budgets).
    cv_resamples : int, default 200
        Bootstrap refits per cross-validation fold (for the held-out d* interval).
    baselines : bool, default True
        Fit the baselines and compare AICc.
    rng : int or Generator, default 0
    progress : bool
        Show a progress bar.

    Returns
    -------
    FitResult

    Raises
    ------
    fits.exceptions.InsufficientDataError
        Missing or non-finite values, one budget, fewer cells than parameters.
    fits.exceptions.FitRefusedError
        The optimum is on a bound or grid edge, or an amplitude is about zero.
    """
    check_choice(loss, "loss", LOSSES)
    check_choice(train_model, "train_model", TRAIN_MODELS)
    check_choice(bootstrap, "bootstrap", BOOTSTRAP_METHODS)
    check_in_interval(
        confidence_level, "confidence_level", 0.0, 1.0, closed="neither", allow_nan=False
    )
    if n_resamples != 0:
        check_positive_int(n_resamples, "n_resamples", minimum=2)
    if f_scale is not None:
        check_in_interval(f_scale, "f_scale", 0.0, closed="neither", allow_nan=False)
    spec = _spec(model, gap, rate, delta)
    generator = np.random.default_rng(rng)
    with Progress(progress) as bar:
        bar.stage("preparing data")
        data = prepare_data(
            runs, target=target, weights=weights, complexity=spec.measured, exclude=exclude
        )
        tm = TradeoffModel.for_data(spec, data, bounds)
        n_params = tm.n_shape + 3
        if data.n_cells <= n_params:
            raise InsufficientDataError(
                f"the fit needs more (d, n) cells than parameters: got {data.n_cells} cells "
                f"({data.n_runs} runs) for {n_params} parameters {list(tm.param_names)}."
            )
        if bootstrap == "seeds" and int(data.cells["m"].min()) < 2:
            raise InsufficientDataError(
                "`bootstrap` 'seeds' needs two or more runs (seeds) in every (d, n) cell; use 'wild'."
            )
        bar.stage("fitting")
        core = fit_core(tm, data, loss=loss, f_scale=f_scale, grid=grid)
        surfaces = make_surfaces(data, tm, train_model)
        budgets = data.n_levels
        d_hat, br_hat, method = dstar(tm, core.theta, core.amps, surfaces, budgets)
        draws: BootstrapDraws | None = None
        d_draws = br_draws = None
        if n_resamples:
            bar.stage(f"bootstrap ({n_resamples} refits)")
            draws = core.bootstrap(
                data,
                n_resamples=n_resamples,
                method=bootstrap,
                rng=generator,
                loss=loss,
                grid=grid,
            )
            flagged = float(np.mean(draws.flags != 0))
            if flagged > 0.1:
                warnings.warn(
                    f"{flagged:.0%} of the {n_resamples} bootstrap refits ended on a bound or with a "
                    "vanished amplitude; the intervals include them, but the model is weakly "
                    "identified by these runs.",
                    DegenerateBootstrapWarning,
                    stacklevel=2,
                )
            draw_surfaces = make_surfaces(data, tm, train_model, draws.train_cells, draws.K_cells)
            d_draws, br_draws, _ = dstar(tm, draws.theta, draws.amps, draw_surfaces, budgets)
        cov, cond = jacobian_covariance(core, data)
        base_list = []
        if baselines:
            bar.stage("baselines")
            base_list = fit_baselines(data, tm)
        cv_rows: list[dict[str, Any]] = []
        if cv and len(budgets) >= 3:
            cv_rows = cross_validate(
                data,
                tm,
                loss=loss,
                f_scale=core.f_scale,
                grid=grid,
                n_resamples=cv_resamples,
                bootstrap=bootstrap,
                confidence_level=confidence_level,
                rng=generator,
                baselines=baselines,
                on_fold=bar.stage,
            )
        config = {
            "target": target,
            "loss": loss,
            "f_scale": core.f_scale,
            "weights": data.weighting,
            "train_model": train_model,
            "grid_points": {k: len(a) for k, a in zip(tm.shape_names, tm.grid(grid), strict=True)},
            "grid": grid,
            "bounds": {k: list(v) for k, v in tm.bounds.items()},
            "excluded": data.excluded,
            "n_resamples": int(n_resamples),
            "bootstrap": draws.method if draws is not None else None,
            "confidence_level": confidence_level,
            "cv_resamples": cv_resamples if cv_rows else 0,
            "rng": rng if isinstance(rng, int) else None,
            "versions": versions(),
            "covariance_condition": cond,
        }
        bar.stage("done")
    return assemble_result(
        tm,
        data,
        core,
        surfaces,
        (d_hat[0], br_hat[0], method),
        draws,
        (d_draws, br_draws),
        cov,
        base_list,
        cv_rows,
        config,
    )


def _spec(
    model: str | ModelSpec, gap: str | None, rate: str | None, delta: float | None
) -> ModelSpec:
    overrides = {k: v for k, v in (("gap", gap), ("rate", rate), ("delta", delta)) if v is not None}
    if isinstance(model, ModelSpec):
        return dataclasses.replace(model, **overrides)
    return ModelSpec.parse(model, **overrides)
