r"""Several model families at once: AICc weights and a model-averaged d*(n).

When the user names several families (``model="power;exp;power:mcallester_exact"``), each is
fitted to the same runs and compared on one Gaussian likelihood of the weighted run residuals:

.. math::

    \mathrm{AICc}_k = -2\ell_k + 2p_k + \frac{2p_k(p_k+1)}{N-p_k-1}, \qquad
    w_k = \frac{e^{-\Delta_k/2}}{\sum_j e^{-\Delta_j/2}}, \quad
    \Delta_k = \mathrm{AICc}_k - \min_j \mathrm{AICc}_j,

with :math:`p_k` the family's parameters plus the noise variance. The model-averaged d*(n) is
:math:`\sum_k w_k\, d^*_k(n)`; its interval comes from a bootstrap in which **every refit chooses
its family**: each resampled data set (the same resample for every family) is refitted by every
family, the family with the lowest AICc on that resample supplies that draw's d*(n), and the
interval is the percentile interval of those draws (Buckland, Burnham & Augustin 1997). When
the families disagree, the draws mix them and the interval widens; a single family's interval
never shows that.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from fits.estimate._baselines import gaussian_llf, information_criteria
from fits.estimate._bootstrap import choose_method, resample, run_bootstrap
from fits.estimate._core import fit_core, refusal_message
from fits.estimate._interval import ConfidenceInterval, percentile_bounds
from fits.estimate._varpro import Refusal
from fits.model._cells import FitData, inverse_variance_weights
from fits.model._dstar import dstar, make_surfaces
from fits.model._families import ModelSpec, TradeoffModel
from fits.results._selection import FamilyFit, ModelSelection
from pacbound.exceptions import TradeoffError

__all__ = ["select_families"]


def _aicc(
    model: TradeoffModel, r: NDArray[np.float64], w: NDArray[np.float64], fitted_runs: Any
) -> NDArray[np.float64]:
    """AICc of each row of run residuals ``r - fitted_runs`` (..., runs)."""
    resid = np.atleast_2d(r - fitted_runs)
    w = np.broadcast_to(w, resid.shape)
    n_params = len(model.param_names)
    return np.array(
        [
            information_criteria(gaussian_llf(resid[i], w[i]), resid.shape[1], n_params)["aicc"]
            for i in range(resid.shape[0])
        ]
    )


def select_families(
    data: FitData,
    specs: list[tuple[str, ModelSpec]],
    *,
    bounds: dict[str, tuple[float, float]] | None,
    grid: int | None,
    train_model: str,
    n_resamples: int,
    bootstrap: str,
    confidence_level: float,
    rng: np.random.Generator,
) -> ModelSelection:
    """Fit every family of ``specs`` to ``data``; see the module docstring."""
    budgets = data.n_levels
    fits: list[tuple[str, TradeoffModel, Any, str]] = []
    for label, spec in specs:
        try:
            tm = TradeoffModel.for_data(spec, data, bounds)
            core = fit_core(tm, data, grid=grid, refuse=False)
        except TradeoffError as exc:  # a family the data cannot carry is reported, not fatal
            fits.append((label, None, None, str(exc).split(";")[0]))
            continue
        reason = "" if core.refusal is Refusal.OK else refusal_message(core).split(". ")[0]
        fits.append((label, tm, core, reason))
    ok = [(label, tm, core) for label, tm, core, reason in fits if not reason]
    aicc = {
        label: float(_aicc(tm, data.r, data.w, core.fitted_cells[data.cell_of_run])[0])
        for label, tm, core in ok
    }
    best_aicc = min(aicc.values()) if aicc else np.inf
    raw = {k: np.exp(-(v - best_aicc) / 2.0) for k, v in aicc.items()}
    total = sum(raw.values()) or 1.0
    weights = {k: v / total for k, v in raw.items()}
    point = {}
    for label, tm, core in ok:
        surfaces = make_surfaces(data, tm, train_model)
        point[label] = dstar(tm, core.theta, core.amps, surfaces, budgets)[0][0]
    averaged = (
        sum(weights[k] * point[k] for k in point) if point else np.full(len(budgets), np.nan)
    )
    chosen = dict.fromkeys(aicc, 0.0)
    own: dict[str, tuple[ConfidenceInterval, ...]] = {}
    intervals: list[ConfidenceInterval | None] = [None] * len(budgets)
    if n_resamples and ok:
        best_label = min(aicc, key=aicc.__getitem__)
        best_fit = next(core for label, _, core in ok if label == best_label)
        method = choose_method(data, bootstrap)
        seed = int(rng.integers(2**63))
        # the same resamples for every family: one seed, and the wild bootstrap's residuals
        # taken from the best family's fit for all of them
        r, _, _ = resample(
            data, method, n_resamples, np.random.default_rng(seed), best_fit.fitted_cells
        )
        w_runs = (
            inverse_variance_weights(r, data.cell_of_run, data.n_cells)
            if data.weighting == "inverse-variance"
            else np.broadcast_to(data.w, r.shape)
        )
        draw_aicc, draw_dstar = [], []
        for _, tm, core in ok:
            draws = run_bootstrap(
                tm,
                data,
                core.theta,
                best_fit.fitted_cells,
                n_resamples=n_resamples,
                method=method,
                rng=np.random.default_rng(seed),
                grid=grid,
            )
            X = tm.columns(
                draws.theta,
                data.cell_d,
                data.cell_n,
                draws.train_cells if tm.spec.uses_train_risk else None,
                draws.K_cells if tm.spec.measured is not None else None,
            )
            fitted = np.einsum("dcp,dp->dc", X, draws.amps)[:, data.cell_of_run]
            a = _aicc(tm, r, w_runs, fitted)
            draw_aicc.append(a)
            surf = make_surfaces(data, tm, train_model, draws.train_cells, draws.K_cells)
            draw_dstar.append(dstar(tm, draws.theta, draws.amps, surf, budgets)[0])
        pick = np.argmin(np.stack(draw_aicc), axis=0)  # (D,)
        picked = np.stack(draw_dstar)[pick, np.arange(n_resamples)]  # (D, nb)
        for i, (label, _, _) in enumerate(ok):
            chosen[label] = float(np.mean(pick == i))
            lo_k, hi_k = percentile_bounds(draw_dstar[i], confidence_level)
            own[label] = tuple(
                ConfidenceInterval(float(a), float(b), confidence_level)
                for a, b in zip(lo_k, hi_k, strict=True)
            )
        lo, hi = percentile_bounds(picked, confidence_level)
        intervals = [
            ConfidenceInterval(float(a), float(b), confidence_level, "bootstrap percentile, "
                               "family chosen per refit")
            for a, b in zip(lo, hi, strict=True)
        ]
    families = tuple(
        FamilyFit(
            label,
            "-" if tm is None else tm.spec.label,
            aicc.get(label, float("inf")),
            weights.get(label, 0.0),
            reason,
            tuple(float(v) for v in point.get(label, ())),
            chosen.get(label, 0.0),
            own.get(label, ()),
        )
        for label, tm, _, reason in fits
    )
    return ModelSelection(
        families,
        tuple(float(n) for n in budgets),
        tuple(float(v) for v in np.atleast_1d(averaged)),
        tuple(intervals),
        int(n_resamples) if ok else 0,
    )
