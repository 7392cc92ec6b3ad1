"""The core fit: one tradeoff model bound to one data set, fitted by variable projection.

:func:`fit_core` grids the shape parameters, solves the amplitudes exactly, runs a batched
pattern search from distinct starts, polishes with Nelder–Mead (robust ``least_squares`` when
asked), and flags a fit on a bound or with a vanished amplitude; :class:`CoreFit` carries the
optimum and bootstraps itself. :func:`fits.analysis.fit_tradeoff` builds on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fits.estimate._bootstrap import BootstrapDraws, run_bootstrap
from fits.estimate._choices import LOSSES
from fits.estimate._search import distinct_starts, pattern_search
from fits.estimate._varpro import (
    Problem,
    RefineResult,
    Refusal,
    grid_table,
    refine,
    refusal,
    shape_grid,
    tiny_amplitudes,
)
from fits.exceptions import FitRefusedError
from fits.model._cells import FitData
from fits.model._families import PARAM_DOC, TradeoffModel

__all__ = ["LOSSES", "CoreFit", "cell_problem", "fit_core", "jacobian_covariance", "row_problem"]


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
    refusal : Refusal
        ``Refusal.OK``, or why the fit is refused (a shape on its bound, a vanished amplitude,
        a non-finite objective).
    tiny : tuple of bool
        Whether the gap (A) and extrapolation (B) terms are about zero.
    """

    model: TradeoffModel
    fitted_cells: NDArray[np.float64]
    refusal: Refusal
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
        shapes, residuals from its fitted cells, its robust scale); see :mod:`fits.estimate._bootstrap`."""
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
    start: NDArray[np.float64] | None = None,
) -> CoreFit:
    """Fit ``model`` to ``data`` by variable projection; raise FitRefusedError when refused.

    Without ``start`` the search begins at the ``restarts`` best grid points that are not grid
    neighbours. With ``start`` (shape parameters on the internal scale, e.g. the optimum of
    the full data when fitting a cross-validation fold) it is a warm start: the search begins
    at ``start`` and its ``2 s`` neighbours one grid spacing away along each axis (``s``
    shapes), the grid is only used if the objective is non-finite at all of them, and the
    optimum is polished by Levenberg–Marquardt instead of Nelder–Mead.
    """
    problem = cell_problem(model, data)
    rp = row_problem(model, data)
    pts, shape, step = shape_grid(model, grid)
    starts = None
    if start is not None:
        starts = warm_starts(np.asarray(start, dtype=float), 2.0 * step, model.lo, model.hi)
        if not np.isfinite(problem.objective(starts, np.zeros(len(starts), dtype=int))).any():
            starts = None
    if starts is None:
        table = grid_table(problem, pts)
        if not np.isfinite(table).any():
            raise FitRefusedError(
                "the model cannot be evaluated on these runs (non-finite values at every grid "
                "point); check the difficulties and losses.",
                reason=Refusal.NONFINITE.reason,
            )
        starts = pts[distinct_starts(table, shape, restarts)[0]]
    theta, value = pattern_search(
        problem.objective, starts, np.zeros(len(starts), dtype=int), model.lo, model.hi, step
    )
    theta0 = theta[int(np.argmin(value))]
    res = refine(
        problem,
        theta0,
        loss=loss,
        f_scale=f_scale,
        rows_problem=rp,
        polish="nelder-mead" if start is None else "levenberg-marquardt",
    )
    X_rows = model.columns(res.theta[None], rp.d, rp.n, rp.q, rp.K)
    fitted_rows = X_rows[0] @ res.amps
    rss = float(np.sum(data.w * (data.r - fitted_rows) ** 2))
    X = model.columns(res.theta[None], problem.d, problem.n, problem.q, problem.K)
    fitted_cells = X[0] @ res.amps
    spread = float(np.ptp(data.cells["r_mean"]))
    code = Refusal(int(refusal(model, res.theta[None], res.amps[None], X, spread)[0]))
    tiny = tuple(bool(t) for t in tiny_amplitudes(res.amps[None], X, spread)[0])
    if not np.isfinite(rss):
        code = Refusal.NONFINITE
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
    if refuse and code is not Refusal.OK:
        raise FitRefusedError(
            refusal_message(fit),
            reason=code.reason,
            params=fit.params,
        )
    return fit


def warm_starts(
    start: NDArray[np.float64],
    spacing: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``start`` and its neighbours ``start +- spacing_i e_i`` inside ``[lo, hi]``: (2 s + 1, s)."""
    eye = np.eye(len(start))
    pts = np.concatenate([start[None], start + spacing * eye, start - spacing * eye])
    return np.clip(pts, lo, hi)


def refusal_message(fit: CoreFit) -> str:
    """Why a fit is refused, with the numbers."""
    model = fit.model
    params = fit.params
    if fit.refusal is Refusal.ON_BOUND:
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
    if fit.refusal is Refusal.VANISHED_AMPLITUDE:
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


def jacobian_covariance(
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
