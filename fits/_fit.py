"""Fit the tradeoff to runs: :func:`fit_tradeoff`, the one call that does it all.

Pipeline: check and aggregate the runs (:mod:`fits._cells`), bind the model to the data
(:mod:`fits._models`), fit by variable projection (:mod:`fits._varpro`: grid, batched pattern
search from distinct starts, Nelder–Mead polish, robust ``least_squares`` when asked), refuse
fits on a bound or with a vanished amplitude, compute d*(n) (:mod:`fits._dstar`), bootstrap
with refits (:mod:`fits._bootstrap`), compare with baselines on AICc (:mod:`fits._baselines`),
and cross-validate over budgets (:mod:`fits._crossval`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from fits._bootstrap import BOOTSTRAP_METHODS, BootstrapDraws, run_bootstrap
from fits._cells import FitData, prepare_data
from fits._dstar import dstar, make_surfaces
from fits._models import PARAM_DOC, ModelSpec, TradeoffModel
from fits._runtime import Progress, versions
from fits._search import distinct_starts, pattern_search
from fits._varpro import (
    Problem,
    RefineResult,
    grid_table,
    refine,
    refusal,
    shape_grid,
    tiny_amplitudes,
)
from fits.exceptions import DegenerateBootstrapWarning, FitRefusedError, InsufficientDataError
from pacbound._validation import check_choice, check_in_interval, check_positive_int

if TYPE_CHECKING:
    from fits._result import FitResult

__all__ = ["CoreFit", "fit_core", "fit_tradeoff"]

LOSSES = ("linear", "soft_l1", "huber")
TRAIN_MODELS = ("linear", "interpolate", "flat")


@dataclass(frozen=True)
class CoreFit(RefineResult):
    """One fit of the model to the data (no intervals).

    Attributes
    ----------
    model : TradeoffModel
    theta, amps : ndarray
        Shape parameters (log scale) and amplitudes at the optimum.
    rss : float
        Weighted residual sum of squares over the runs.
    cost : float
        The optimiser's objective: ``rss / 2`` (linear loss) or scipy's robust cost.
    success : bool
    message : str
    nfev : int
    f_scale : float or None
    fitted_cells : ndarray
        The fitted gap at each cell.
    refusal : int
        0 fine, 1 a shape on its bound, 2 an amplitude about zero.
    tiny : tuple of bool
        Whether the gap (A) and extrapolation (B) terms are about zero.
    """

    model: TradeoffModel
    fitted_cells: NDArray[np.float64]
    refusal: int
    tiny: tuple[bool, bool] = (False, False)

    @property
    def params(self) -> dict[str, float]:
        return self.model.params_dict(self.theta, self.amps)

    def bootstrap(
        self,
        data: FitData,
        *,
        n_resamples: int,
        method: str,
        rng: np.random.Generator,
        loss: str,
        grid: int | None,
    ) -> BootstrapDraws:
        """Refit ``n_resamples`` bootstrap draws of ``data`` around this fit (warm start at its
        shapes, residuals from its fitted cells, its robust scale); see :mod:`fits._bootstrap`."""
        return run_bootstrap(
            self.model,
            data,
            self.theta,
            self.fitted_cells,
            n_resamples=n_resamples,
            method=method,
            rng=rng,
            loss=loss,
            f_scale=self.f_scale,
            grid=grid,
        )


def cell_problem(
    model: TradeoffModel, data: FitData, y: NDArray[np.float64] | None = None
) -> Problem:
    """The projected least-squares problem on cell means (exact for the linear loss)."""
    needs_q = model.spec.uses_train_risk
    return Problem(
        model,
        data.cell_d,
        data.cell_n,
        (data.cells["r_mean"].to_numpy() if y is None else y)[None, :],
        data.cell_weight,
        data.cells["train_mean"].to_numpy() if needs_q else None,
        data.cells["K_mean"].to_numpy() if model.spec.measured else None,
    )


def row_problem(model: TradeoffModel, data: FitData) -> Problem:
    """The same problem with one point per run (for robust losses)."""
    needs_q = model.spec.uses_train_risk
    cells = data.cell_of_run
    return Problem(
        model,
        data.runs["difficulty"].to_numpy(float),
        data.runs["n"].to_numpy(float),
        data.r[None, :],
        data.w,
        data.cells["train_mean"].to_numpy()[cells] if needs_q else None,
        data.cells["K_mean"].to_numpy()[cells] if model.spec.measured else None,
    )


def fit_core(
    model: TradeoffModel,
    data: FitData,
    *,
    loss: str = "linear",
    f_scale: float | None = None,
    grid: int | None = None,
    restarts: int = 4,
    refuse: bool = True,
) -> CoreFit:
    """Fit ``model`` to ``data`` by variable projection; raise FitRefusedError when refused."""
    problem = cell_problem(model, data)
    rp = row_problem(model, data)
    pts, shape, step = shape_grid(model, grid)
    table = grid_table(problem, pts)
    if not np.isfinite(table).any():
        raise FitRefusedError(
            "the model cannot be evaluated on these runs (non-finite values at every grid "
            "point); check the difficulties and losses.",
            reason="nonfinite",
        )
    starts = pts[distinct_starts(table, shape, restarts)[0]]
    theta, value = pattern_search(
        problem.objective, starts, np.zeros(len(starts), dtype=int), model.lo, model.hi, step
    )
    theta0 = theta[int(np.argmin(value))]
    res = refine(problem, theta0, loss=loss, f_scale=f_scale, rows_problem=rp)
    X_rows = model.columns(res.theta[None], rp.d, rp.n, rp.q, rp.K)
    fitted_rows = X_rows[0] @ res.amps
    rss = float(np.sum(data.w * (data.r - fitted_rows) ** 2))
    X = model.columns(res.theta[None], problem.d, problem.n, problem.q, problem.K)
    fitted_cells = X[0] @ res.amps
    spread = float(np.ptp(data.cells["r_mean"]))
    code = int(refusal(model, res.theta[None], res.amps[None], X, spread)[0])
    tiny = tuple(bool(t) for t in tiny_amplitudes(res.amps[None], X, spread)[0])
    if not np.isfinite(rss):
        code = 3
    fit = CoreFit(
        **{
            **{f.name: getattr(res, f.name) for f in dataclasses.fields(res)},
            "rss": rss,
            "cost": res.cost if loss != "linear" else rss / 2.0,
        },
        model=model,
        fitted_cells=fitted_cells,
        refusal=code,
        tiny=tiny,
    )
    if refuse and code:
        raise FitRefusedError(
            refusal_message(fit),
            reason={1: "bound", 2: "amplitude", 3: "nonfinite"}[code],
            params=fit.params,
        )
    return fit


def refusal_message(fit: CoreFit) -> str:
    """Why a fit is refused, with the numbers."""
    model = fit.model
    params = fit.params
    if fit.refusal == 1:
        width = model.hi - model.lo
        parts = []
        for i, name in enumerate(model.shape_names):
            lo, hi = model.bounds[name]
            if fit.theta[i] - model.lo[i] < 1e-3 * width[i]:
                parts.append(
                    f"`{name}` ({PARAM_DOC[name]}) = {params[name]:.4g} is on its lower bound {lo:g}"
                )
            elif model.hi[i] - fit.theta[i] < 1e-3 * width[i]:
                parts.append(
                    f"`{name}` ({PARAM_DOC[name]}) = {params[name]:.4g} is on its upper bound {hi:g}"
                )
        return (
            f"fit refused ({model.spec.label}): " + "; ".join(parts) + ". The optimum is on the "
            "edge of the grid, so the data do not pin this parameter down and d*(n) would be set "
            "by the bound; widen `bounds`, try another family (--model), or collect more "
            "difficulties/budgets."
        )
    if fit.refusal == 2:
        which = []
        if fit.tiny[0]:
            which.append(
                f"the gap amplitude A = {params['A']:.3g}: the fitted gap does not shrink with "
                "the budget n"
            )
        if fit.tiny[1]:
            which.append(
                f"the extrapolation amplitude B = {params['B']:.3g}: harder training data do not "
                "lower the gap"
            )
        return (
            f"fit refused ({model.spec.label}): "
            + " and ".join(which or ["an amplitude is about zero"])
            + ". Without both terms there is no tradeoff, so d*(n) is not identified by this "
            "model; the runs do not show the theory's mechanism (see the baselines)."
        )
    return f"fit refused ({model.spec.label}): the objective is not finite at the optimum."


def _jacobian_covariance(
    core: CoreFit, data: FitData
) -> tuple[NDArray[np.float64] | None, float | None]:
    """Approximate covariance from the Jacobian of the run residuals (natural parameters)."""
    model = core.model
    rp = row_problem(model, data)
    p0 = np.array(list(core.params.values()))

    def resid(p: NDArray[np.float64]) -> NDArray[np.float64]:
        theta, amps = model.split(p)
        return np.sqrt(data.w) * (
            data.r - model.predict(theta[None], amps[None], rp.d, rp.n, rp.q, rp.K)[0]
        )

    J = np.empty((data.n_runs, len(p0)))
    for i in range(len(p0)):
        h = 1e-6 * max(abs(p0[i]), 1e-6)
        up, dn = p0.copy(), p0.copy()
        up[i] += h
        dn[i] -= h
        if model.param_names[i] in model.shape_names:
            dn[i] = max(dn[i], p0[i] * (1 - 1e-6))
        J[:, i] = (resid(up) - resid(dn)) / (up[i] - dn[i])
    dof = data.n_runs - len(p0)
    if dof <= 0 or not np.isfinite(J).all():
        return None, None
    JTJ = J.T @ J
    cond = float(np.linalg.cond(JTJ))
    if not np.isfinite(cond) or cond > 1e14:
        return None, cond
    s2 = core.rss / dof
    return np.linalg.inv(JTJ) * s2, cond


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
    from fits._assemble import assemble_result
    from fits._crossval import cross_validate

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
        cov, cond = _jacobian_covariance(core, data)
        base_list = []
        if baselines:
            bar.stage("baselines")
            from fits._baselines import fit_baselines

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
