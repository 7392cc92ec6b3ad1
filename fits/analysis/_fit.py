"""Fit the tradeoff to runs: :func:`fit_tradeoff`, the one call that does it all.

Pipeline: check and aggregate the runs (:mod:`fits.model`), bind the model to the data, fit by
variable projection (:func:`fits.estimate.fit_core`), refuse fits on a bound or with a vanished
amplitude, compute d*(n), bootstrap with refits, compare with baselines on AICc, cross-validate
over budgets (:mod:`fits.estimate`), and assemble the :class:`~fits.results.FitResult`.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pandas as pd

from fits.analysis._averaging import select_families
from fits.analysis._config import FitConfig
from fits.estimate._baselines import fit_baselines
from fits.estimate._bootstrap import BootstrapDraws
from fits.estimate._core import fit_core, jacobian_covariance
from fits.estimate._crossval import cross_validate
from fits.estimate._lack_of_fit import lack_of_fit
from fits.estimate._model_free import model_free_dstar
from fits.estimate._varpro import Refusal
from fits.exceptions import DegenerateBootstrapWarning, FitRefusedError, InsufficientDataError
from fits.model._cells import FitData, prepare_data
from fits.model._dstar import dstar, make_surfaces
from fits.model._families import TradeoffModel
from fits.results._assemble import assemble_result
from fits.results._result import FitResult
from pacbound.support import Progress, library_versions

__all__ = ["fit_tradeoff"]


def fit_tradeoff(
    runs: pd.DataFrame,
    config: FitConfig | None = None,
    *,
    progress: bool = False,
    **options: Any,
) -> FitResult:
    """Fit the generalization–extrapolation tradeoff to runs and predict d*(n) with intervals.

    Parameters
    ----------
    runs : DataFrame
        The runs table of :func:`fits.load_runs` (canonical columns).
    config : FitConfig, optional
        How to fit (see :class:`FitConfig` for every setting and its allowed values).
    progress : bool
        Show a progress bar.
    **options
        :class:`FitConfig` fields, as a shorthand: ``fit_tradeoff(runs, n_resamples=0)`` is
        ``fit_tradeoff(runs, FitConfig(n_resamples=0))``; given with ``config`` they replace
        its fields.

    Returns
    -------
    FitResult

    Raises
    ------
    pacbound.exceptions.InvalidParameterError
        A setting outside its declared values.
    fits.exceptions.InsufficientDataError
        Missing or non-finite values, one budget, fewer cells than parameters.
    fits.exceptions.FitRefusedError
        The optimum is on a bound or grid edge, or an amplitude is about zero.
    """
    if config is None:
        config = FitConfig(**options)
    elif options:
        config = config.replace(**options)
    cfg = config
    if len(cfg.families) > 1:
        return _fit_families(runs, cfg, progress)
    spec = cfg.spec()
    loss, grid, bootstrap = cfg.loss, cfg.grid, cfg.bootstrap
    n_resamples, confidence_level, train_model = (
        cfg.n_resamples,
        cfg.confidence_level,
        cfg.train_model,
    )
    generator = np.random.default_rng(cfg.seed)
    with Progress(progress) as bar:
        bar.stage("preparing data")
        data = _prepare(runs, cfg, spec.measured)
        tm = TradeoffModel.for_data(spec, data, cfg.bounds)
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
        core = fit_core(tm, data, loss=loss, f_scale=cfg.f_scale, grid=grid)
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
            flagged = float(np.mean(draws.flags != Refusal.OK))
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
        bar.stage("lack of fit and the data's own d*")
        # their own random stream, so that adding them leaves the bootstrap draws unchanged
        checks_rng = np.random.default_rng(None if cfg.seed is None else [cfg.seed, 1])
        lof = lack_of_fit(core, data, alpha=cfg.lack_of_fit_alpha, rng=checks_rng)
        free = model_free_dstar(
            data,
            n_resamples=max(n_resamples, 200),
            confidence_level=confidence_level,
            rng=checks_rng,
        )
        cov, cond = jacobian_covariance(core, data)
        base_list = []
        if cfg.baselines:
            bar.stage("baselines")
            base_list = fit_baselines(data, tm)
        cv_rows: list[dict[str, Any]] = []
        if cfg.cv and len(budgets) >= 3:
            cv_rows = cross_validate(
                data,
                tm,
                loss=loss,
                f_scale=core.f_scale,
                grid=grid,
                n_resamples=cfg.cv_resamples,
                bootstrap=bootstrap,
                confidence_level=confidence_level,
                rng=generator,
                baselines=cfg.baselines,
                on_fold=bar.stage,
                start=core.theta,
            )
        config = {
            "target": cfg.target,
            "loss": loss,
            "f_scale": core.f_scale,
            "weights": data.weighting,
            "train_model": train_model,
            "grid_points": {k: len(a) for k, a in zip(tm.shape_names, tm.grid(grid), strict=True)},
            "grid": grid,
            "bounds": {k: list(v) for k, v in tm.bounds.items()},
            "excluded": data.excluded,
            "max_bins": cfg.max_bins,
            "difficulty_bins": data.binning,
            "n_resamples": int(n_resamples),
            "bootstrap": draws.method if draws is not None else None,
            "confidence_level": confidence_level,
            "cv_resamples": cfg.cv_resamples if cv_rows else 0,
            "seed": cfg.seed,
            "lack_of_fit_alpha": cfg.lack_of_fit_alpha,
            "versions": library_versions(("numpy", "scipy", "pandas", "statsmodels")),
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
        lack_of_fit=lof,
        model_free=free,
    )


def _prepare(runs: pd.DataFrame, cfg: FitConfig, complexity: str | None) -> FitData:
    """The runs as the fit sees them: target, weights, exclusions and binning from ``cfg``."""
    return prepare_data(
        runs,
        target=cfg.target,
        weights=cfg.weights,
        complexity=complexity,
        exclude=cfg.exclude,
        max_bins=cfg.max_bins,
    )


def _fit_families(runs: pd.DataFrame, cfg: FitConfig, progress: bool) -> FitResult:
    """Several families: compare them, average d*(n), and report the best one's full fit."""
    data = _prepare(runs, cfg, next((s.measured for _, s in cfg.specs() if s.measured), None))
    selection = select_families(
        data,
        cfg.specs(),
        bounds=cfg.bounds,
        grid=cfg.grid,
        train_model=cfg.train_model,
        n_resamples=cfg.n_resamples,
        bootstrap=cfg.bootstrap,
        confidence_level=cfg.confidence_level,
        rng=np.random.default_rng(None if cfg.seed is None else [cfg.seed, 2]),
    )
    accepted = [f for f in selection.families if not f.refused]
    if not accepted:
        raise FitRefusedError(
            "every model family was refused: "
            + "; ".join(f"{f.label}: {f.refused}" for f in selection.families),
            reason="all families refused",
        )
    best = min(accepted, key=lambda f: f.aicc)
    result = fit_tradeoff(runs, cfg.replace(model=best.label), progress=progress)
    note = (
        f" Model uncertainty: {len(selection.families)} families compared on AICc (best "
        f"{best.label}, weight {best.weight:.2f}); the model-averaged d*(n) is "
        + ", ".join(
            f"{v:.3g}" + ("" if ci is None else f" [{ci.low:.3g}, {ci.high:.3g}]") + f" at n={n:g}"
            for n, v, ci in zip(selection.budgets, selection.averaged, selection.intervals, strict=True)
        )
        + " (intervals from refits that choose their family each time)."
    )
    config = {**result.config, "families": cfg.families}
    return dataclasses.replace(
        result, model_selection=selection, verdict=result.verdict + note, config=config
    )
