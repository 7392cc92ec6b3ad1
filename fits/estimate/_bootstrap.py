r"""Bootstrap that keeps the design: resample seeds within (d, n) cells, or a wild bootstrap.

Every draw is refitted (never a linearisation):

1. **Resample.** ``seeds``: within each cell, draw its runs with replacement; the draws are
   rescaled about the cell mean by :math:`\sqrt{m_c/(m_c-1)}` (:math:`m_c` runs in the cell), so
   the resampled cell means have the right variance (the plain bootstrap of 3 seeds would
   shrink it by 2/3 and the intervals with it). Gaps, training metrics and measured complexities
   are resampled together, run by run. ``wild``: Rademacher multipliers on each run's residual
   from the fitted cell value (the training metric stays a known offset).
2. **Grid.** The projected objective at every grid point for every draw at once (one
   ``X'WX`` per grid point, shared by the draws).
3. **Refine.** A batched pattern search from the full-data optimum (warm start) and from the
   draw's best grid points that are not neighbours of each other (restarts); the best wins.
   With a robust loss, four rounds of iteratively reweighted least squares on the runs follow.
4. **Flag** draws whose optimum sits on a bound or whose amplitude vanished; they stay in the
   percentiles (they are what the data do), and their share is reported.

Inverse-variance weights are re-estimated from every draw's runs, as they were from the data,
so the intervals carry the uncertainty of the weights too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fits.estimate._choices import BOOTSTRAP_METHODS
from fits.estimate._search import distinct_starts, levenberg_marquardt, pattern_search
from fits.estimate._varpro import Problem, grid_table, refusal, shape_grid
from fits.exceptions import InsufficientDataError
from fits.model._cells import FitData, cell_sums, inverse_variance_weights, shrunk_cell_weights
from fits.model._families import TradeoffModel

__all__ = ["BOOTSTRAP_METHODS", "BootstrapDraws", "resample", "run_bootstrap"]


@dataclass(frozen=True)
class BootstrapDraws:
    """Refitted bootstrap draws.

    Attributes
    ----------
    method : {"seeds", "wild"}
    theta : ndarray (D, s)
        Shape parameters (internal log scale).
    amps : ndarray (D, 3)
    train_cells, K_cells : ndarray (D, C) or None
        Per-draw cell means of the training metric and of the measured complexity.
    flags : ndarray of int (D,)
        :class:`~fits.estimate.Refusal` values: ``OK`` (0), ``ON_BOUND`` (a shape on its
        bound) or ``VANISHED_AMPLITUDE`` (an amplitude about zero).
    """

    method: str
    theta: NDArray[np.float64]
    amps: NDArray[np.float64]
    train_cells: NDArray[np.float64]
    K_cells: NDArray[np.float64] | None
    flags: NDArray[np.int_]

    @property
    def n_resamples(self) -> int:
        return len(self.theta)


def choose_method(data: FitData, method: str) -> str:
    if method != "auto":
        return method
    return "seeds" if int(data.cells["m"].min()) >= 2 else "wild"


def resample(
    data: FitData,
    method: str,
    n_resamples: int,
    rng: np.random.Generator,
    fitted_cells: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]:
    """Per-run resampled ``(r, train, K)``, each (D, runs) (K None when not measured)."""
    m_runs = data.n_runs
    r = np.empty((n_resamples, m_runs))
    train = np.empty((n_resamples, m_runs))
    measured = np.isfinite(data.K).all()
    K = np.empty((n_resamples, m_runs)) if measured else None
    if method == "seeds":
        for c in range(data.n_cells):
            idx = np.flatnonzero(data.cell_of_run == c)
            m = len(idx)
            if m < 2:
                raise InsufficientDataError(
                    "`bootstrap` 'seeds' needs two or more runs (seeds) in every (d, n) cell; "
                    f"the cell d={data.cell_d[c]:g}, n={data.cell_n[c]:g} has {m}. Use 'wild'."
                )
            pick = idx[rng.integers(0, m, size=(n_resamples, m))]
            inflate = np.sqrt(m / (m - 1.0))
            for src, dst in (
                (data.r, r),
                (data.train, train),
                *(((data.K, K),) if measured else ()),
            ):
                mean = src[idx].mean()
                dst[:, idx] = mean + inflate * (src[pick] - mean)
        return r, train, K
    fitted = fitted_cells[data.cell_of_run]
    resid = data.r - fitted
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_resamples, m_runs))
    r[:] = fitted + resid * signs
    train[:] = data.train
    if K is not None:
        K[:] = data.K
    return r, train, K


def seed_cell_draws(
    data: FitData, n_resamples: int, rng: np.random.Generator
) -> tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None, NDArray[np.float64]
]:
    """The cell statistics of :func:`resample`'s ``seeds`` draws, without the per-run arrays.

    The same draws (the generator is used as :func:`resample` uses it) reduced cell by cell:
    per draw the cell means of the gap, the training metric and the measured complexity, and
    the cells' total weights (inverse-variance weights re-estimated from each draw's
    within-cell sums of squares when the data's are; else the data's). Returns
    ``(y_c, q_c, K_c, W_c)``, each (D, cells) (``K_c`` None when not measured); linear in the
    runs, which matters when a binned continuous difficulty puts hundreds of runs in a cell.
    """
    D, C = n_resamples, data.n_cells
    measured = bool(np.isfinite(data.K).all())
    y_c, q_c, ss = np.empty((D, C)), np.empty((D, C)), np.empty((D, C))
    K_c = np.empty((D, C)) if measured else None
    order = np.argsort(data.cell_of_run, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(data.cell_of_run, minlength=C))])
    m = np.diff(bounds).astype(float)
    for c in range(C):
        idx = order[bounds[c] : bounds[c + 1]]
        mc = len(idx)
        if mc < 2:
            raise InsufficientDataError(
                "`bootstrap` 'seeds' needs two or more runs (seeds) in every (d, n) cell; "
                f"the cell d={data.cell_d[c]:g}, n={data.cell_n[c]:g} has {mc}. Use 'wild'."
            )
        pick = idx[rng.integers(0, mc, size=(D, mc))]
        inflate = np.sqrt(mc / (mc - 1.0))
        rp = data.r[pick]
        rbar = rp.mean(axis=1)
        mean = data.r[idx].mean()
        y_c[:, c] = mean + inflate * (rbar - mean)
        ss[:, c] = inflate**2 * ((rp - rbar[:, None]) ** 2).sum(axis=1)
        mean = data.train[idx].mean()
        q_c[:, c] = mean + inflate * (data.train[pick].mean(axis=1) - mean)
        if K_c is not None:
            mean = data.K[idx].mean()
            K_c[:, c] = mean + inflate * (data.K[pick].mean(axis=1) - mean)
    if data.weighting == "inverse-variance":
        W_c = m * shrunk_cell_weights(ss, m)
    else:
        W_c = np.broadcast_to(data.cell_weight, (D, C)).copy()
    return y_c, q_c, K_c, W_c


def run_bootstrap(
    model: TradeoffModel,
    data: FitData,
    theta_hat: NDArray[np.float64],
    fitted_cells: NDArray[np.float64],
    *,
    n_resamples: int,
    method: str,
    rng: np.random.Generator,
    loss: str = "linear",
    f_scale: float | None = None,
    grid: int | None = None,
    restarts: int = 2,
) -> BootstrapDraws:
    """Refit ``n_resamples`` bootstrap draws; see the module docstring."""
    method = choose_method(data, method)
    needs_q = model.spec.uses_train_risk
    if method == "seeds" and loss == "linear":  # only the cells' statistics are needed
        y_c, q_c, K_c, W_c = seed_cell_draws(data, n_resamples, rng)
    else:
        r, train, K = resample(data, method, n_resamples, rng, fitted_cells)
        y_c = data.cell_means(r)
        q_c = data.cell_means(train)
        K_c = data.cell_means(K) if K is not None else None
        if data.weighting == "inverse-variance":  # re-estimated in every draw, like the data's
            w_runs = inverse_variance_weights(r, data.cell_of_run, data.n_cells)
        else:
            w_runs = np.broadcast_to(data.w, r.shape)
        W_c = cell_sums(w_runs, data.cell_of_run, data.n_cells)
    problem = Problem(
        model,
        data.cell_d,
        data.cell_n,
        y_c,
        W_c,
        q_c if needs_q else None,
        K_c if model.spec.measured is not None else None,
    )
    # a coarser grid than the main fit's: it only seeds the restarts (the warm start is exact)
    coarse = max(9, (len(model.grid(grid)[0]) + 1) // 2)
    pts, shape, step = shape_grid(model, coarse)
    table = grid_table(problem, pts)
    starts = distinct_starts(table, shape, max(restarts, 1))
    D = n_resamples
    theta0 = np.concatenate(
        [np.broadcast_to(theta_hat, (D, 1, model.n_shape)), pts[starts]], axis=1
    )  # (D, S, s)
    S = theta0.shape[1]
    rows = np.repeat(np.arange(D), S)
    flat0 = theta0.reshape(-1, model.n_shape)
    active = _worth_refining(problem.objective(flat0, rows).reshape(D, S), theta0, step)
    theta, value = levenberg_marquardt(
        problem, flat0, rows, model.lo, model.hi, active=active.reshape(-1)
    )
    best = np.argmin(value.reshape(D, S), axis=1)
    theta = theta.reshape(D, S, -1)[np.arange(D), best]
    draw_rows = np.arange(D)
    amps, _ = problem.solve(theta, draw_rows)
    if loss != "linear":
        theta, amps = _irls(model, data, r, w_runs, q_c, K_c, theta, amps, loss, f_scale, step)
    X = model.columns(
        theta, data.cell_d, data.cell_n, q_c if needs_q else None, K_c if K_c is not None else None
    )
    flags = refusal(model, theta, amps, X, float(np.ptp(data.cells["r_mean"])))
    return BootstrapDraws(method, theta, amps, q_c, K_c, flags)


def _worth_refining(
    start_values: NDArray[np.float64], starts: NDArray[np.float64], step: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Refine a start unless it duplicates an earlier one or starts far worse than the best.

    A restart within one grid step of an earlier start of its draw, or whose objective is more
    than twice the draw's best start, would only repeat or lose; the warm start always runs.
    """
    S = starts.shape[1]
    best = np.min(start_values, axis=1, keepdims=True)
    keep = start_values <= 2.0 * best + 1e-300
    for j in range(1, S):
        for i in range(j):
            near = (np.abs(starts[:, j] - starts[:, i]) <= 2.0 * step + 1e-12).all(axis=-1)
            keep[:, j] &= ~near
    keep[:, 0] = True
    return keep


def _irls(
    model: TradeoffModel,
    data: FitData,
    r: NDArray[np.float64],
    w_runs: NDArray[np.float64],
    q_c: NDArray[np.float64],
    K_c: NDArray[np.float64] | None,
    theta: NDArray[np.float64],
    amps: NDArray[np.float64],
    loss: str,
    f_scale: float | None,
    step: NDArray[np.float64],
    rounds: int = 4,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Robust refits by iteratively reweighted least squares on the runs (batched over draws)."""
    cells = data.cell_of_run
    needs_q = model.spec.uses_train_risk
    q_rows = q_c[:, cells] if needs_q else None
    K_rows = K_c[:, cells] if K_c is not None else None
    d_rows = data.runs["difficulty"].to_numpy(float)
    n_rows = data.runs["n"].to_numpy(float)
    D = len(theta)
    draws = np.arange(D)
    scale = f_scale if f_scale else 1.0
    for _ in range(rounds):
        pred = model.predict(theta, amps, d_rows, n_rows, q_rows, K_rows)
        z = (np.sqrt(w_runs) * (r - pred) / scale) ** 2
        robust = (
            1.0 / np.sqrt(1.0 + z)
            if loss == "soft_l1"
            else np.minimum(1.0, 1.0 / np.sqrt(np.maximum(z, 1e-300)))
        )
        problem = Problem(model, d_rows, n_rows, r, w_runs * robust, q_rows, K_rows)
        theta, _ = pattern_search(problem.objective, theta, draws, model.lo, model.hi, step / 4.0)
        amps, _ = problem.solve(theta, draws)
    return theta, amps
