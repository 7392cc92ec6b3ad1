r"""Baselines for the tradeoff fit, and AICc on one Gaussian likelihood.

All models predict the same response (the gap :math:`r = L_{test} - L_{train}` of each run) with
the same weights, so their likelihoods compare. With :math:`m` runs, weights :math:`w_i` and
weighted residual sum of squares :math:`\mathrm{RSS}_w`, the Gaussian log-likelihood at the
variance's maximum is

.. math::

    \ell = -\frac m2\left(\log\frac{2\pi\,\mathrm{RSS}_w}{m} + 1\right) + \frac12\sum_i \log w_i,

statsmodels' WLS likelihood; AICc is ``statsmodels.tools.eval_measures.aicc`` with the noise
variance counted as a parameter. A model fitted with a robust loss is scored at its own
parameters on this same likelihood (so AICc there is a comparison, not a maximum).

- ``quadratic per budget``: :math:`r = \beta_{0j} + \beta_{1j} d + \beta_{2j} d^2` for each budget
  j (the scaling-law "Approach 2"; it cannot predict an unseen budget);
- ``pooled quadratic``: the three coefficients linear in :math:`\log n`;
- ``separable``: :math:`r = E + A n^{-\alpha} + B\,T(d) + C\sqrt{K(d)}` with the theory's families
  but no coupling between d and n, so its d* moves with n only through the training loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fits.estimate._search import pattern_search
from fits.estimate._varpro import constrained_ls, normal_equations
from fits.model._cells import FitData
from fits.model._dstar import Surfaces, argmin_over_d
from fits.model._families import TradeoffModel

__all__ = ["Baseline", "fit_baselines", "gaussian_llf", "information_criteria"]


def gaussian_llf(resid: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    """Gaussian log-likelihood of weighted residuals at the ML variance (statsmodels' WLS)."""
    m = len(resid)
    rss = float(np.sum(w * resid**2))
    return -m / 2.0 * (np.log(2.0 * np.pi * max(rss, 1e-300) / m) + 1.0) + 0.5 * float(
        np.sum(np.log(w))
    )


def information_criteria(llf: float, nobs: int, n_params: int) -> dict[str, float]:
    """AICc and BIC with the noise variance counted (``n_params + 1``)."""
    from statsmodels.tools.eval_measures import aicc, bic

    k = n_params + 1
    out_aicc = float(aicc(llf, nobs, k)) if nobs - k - 1 > 0 else float("inf")
    return {"aicc": out_aicc, "bic": float(bic(llf, nobs, k))}


@dataclass(frozen=True)
class Baseline:
    """A fitted baseline.

    Attributes
    ----------
    name : str
    n_params : int
        Fitted coefficients (the noise variance not included).
    rss, llf, aicc, bic : float
    params : dict
    predict : callable (d, n) -> r, or None when the model cannot predict unseen budgets
    note : str
    """

    name: str
    n_params: int
    rss: float
    llf: float
    aicc: float
    bic: float
    params: dict[str, Any]
    predict: Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]] | None = (
        field(repr=False, compare=False)
    )
    note: str = ""

    def dstar(
        self, surfaces: Surfaces, budgets: NDArray[np.float64], lo: float, hi: float
    ) -> tuple[Any, Any]:
        """Point d* per budget (minimising training surface + predicted gap)."""
        predict = self.predict
        if predict is None:
            raise ValueError("no predictor")

        def fun(x: NDArray[np.float64], n: NDArray[np.float64]) -> NDArray[np.float64]:
            x2, n2 = np.atleast_2d(x), np.atleast_2d(n)
            return predict(x2, n2) + surfaces.train(x2, n2)

        value, bracketed = argmin_over_d(fun, 1, budgets, lo, hi)
        return value[0], bracketed[0]


def _finish(
    name: str,
    k: int,
    resid: NDArray[np.float64],
    w: NDArray[np.float64],
    params: dict[str, Any],
    predict: Any,
    note: str = "",
) -> Baseline:
    llf = gaussian_llf(resid, w)
    ic = information_criteria(llf, len(resid), k)
    return Baseline(
        name, k, float(np.sum(w * resid**2)), llf, ic["aicc"], ic["bic"], params, predict, note
    )


def _wls(
    X: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64]
) -> NDArray[np.float64]:
    sw = np.sqrt(w)
    beta, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    return beta


def quadratic_per_budget(data: FitData) -> Baseline | None:
    """Per-budget quadratic in d; None when a budget has fewer than 3 difficulties."""
    d = data.runs["difficulty"].to_numpy(float)
    n = data.runs["n"].to_numpy(float)
    budgets = data.n_levels
    coefs = {}
    resid = np.empty_like(data.r)
    for nb in budgets:
        sel = n == nb
        if len(np.unique(d[sel])) < 3:
            return None
        X = np.stack([np.ones(sel.sum()), d[sel], d[sel] ** 2], axis=1)
        beta = _wls(X, data.r[sel], data.w[sel])
        coefs[float(nb)] = beta
        resid[sel] = data.r[sel] - X @ beta

    def predict(x: NDArray[np.float64], nn: NDArray[np.float64]) -> NDArray[np.float64]:
        x, nn = np.broadcast_arrays(np.asarray(x, float), np.asarray(nn, float))
        out = np.full(x.shape, np.nan)
        for key, beta in coefs.items():
            sel = np.isclose(nn, key)
            out[sel] = beta[0] + beta[1] * x[sel] + beta[2] * x[sel] ** 2
        return out

    params = {f"n={k:g}": [float(v) for v in b] for k, b in coefs.items()}
    return _finish(
        "quadratic per budget",
        3 * len(budgets),
        resid,
        data.w,
        params,
        predict,
        "cannot predict unseen budgets",
    )


def pooled_quadratic(data: FitData) -> Baseline:
    """Quadratic in d with each coefficient linear in log n (6 coefficients)."""
    d = data.runs["difficulty"].to_numpy(float)
    L = np.log(data.runs["n"].to_numpy(float))

    def design(x: NDArray[np.float64], ln: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.stack([np.ones_like(x), x, x**2, ln, ln * x, ln * x**2], axis=-1)

    beta = _wls(design(d, L), data.r, data.w)
    resid = data.r - design(d, L) @ beta

    def predict(x: NDArray[np.float64], nn: NDArray[np.float64]) -> NDArray[np.float64]:
        x, nn = np.broadcast_arrays(np.asarray(x, float), np.asarray(nn, float))
        return design(x, np.log(nn)) @ beta

    names = ["b0", "b1", "b2", "b0_logn", "b1_logn", "b2_logn"]
    return _finish(
        "pooled quadratic",
        6,
        resid,
        data.w,
        dict(zip(names, map(float, beta), strict=True)),
        predict,
    )


def separable(data: FitData, model: TradeoffModel) -> Baseline:
    """E + A n^-alpha + B T(d) + C sqrt(K(d)), fitted by variable projection (grid + pattern search)."""
    d = data.runs["difficulty"].to_numpy(float)
    n = data.runs["n"].to_numpy(float)
    power_k = model.spec.complexity != "exp"
    power_t = model.spec.extrap == "power"
    span = model.d_range[1] - model.d_range[0]
    lo = np.log([0.02, 0.05 if power_k else 0.02 / span, 0.02 if power_t else 0.02 / span])
    hi = np.log([3.0, 8.0 if power_k else 12.0 / span, 8.0 if power_t else 12.0 / span])
    nonneg = np.array([False, True, True, True])

    def design(
        theta: NDArray[np.float64], x: NDArray[np.float64], nn: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        theta = np.atleast_2d(theta)
        al, g, b = (np.exp(theta[:, i : i + 1]) for i in range(3))
        x2 = np.atleast_2d(x)
        n2 = np.atleast_2d(nn)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            K = (x2 / model.d_ref) ** (g / 2) if power_k else np.exp(g / 2 * (x2 - model.d_ref))
            T = (x2 / model.d_ref) ** (-b) if power_t else np.exp(-b * (x2 - model.d_ref))
            N = n2 ** (-al)
        shape = np.broadcast_shapes(K.shape, T.shape, N.shape)
        return np.stack([np.ones(shape), *(np.broadcast_to(a, shape) for a in (N, T, K))], axis=-1)

    # searched on the cells (weighted cell means, total weights) with the runs' within-cell sum
    # of squares added back: the runs' weighted RSS when a cell's runs share (d, n), and cells
    # instead of thousands of runs when the difficulty is continuous (binned)
    cell_r = data.cell_means(data.r)
    within = float(np.sum(data.w * (data.r - cell_r[data.cell_of_run]) ** 2))
    cell_w = data.cell_weight

    def phi(theta: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        X = design(theta, data.cell_d, data.cell_n)
        G, h, yy = normal_equations(
            X, np.broadcast_to(cell_r, X.shape[:-1]), np.broadcast_to(cell_w, X.shape[:-1])
        )
        coef, rss = constrained_ls(G, h, yy, nonneg)
        return coef, rss + within

    axes = [np.linspace(a, b, 11) for a, b in zip(lo, hi, strict=True)]
    mesh = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=-1)
    _, rss = phi(mesh)
    order = np.argsort(rss)[:3]
    step = np.array([(a[1] - a[0]) / 2.0 for a in axes])
    found, value = pattern_search(
        lambda t, _rows: phi(t)[1], mesh[order], np.zeros(len(order), dtype=int), lo, hi, step
    )
    theta = found[int(np.argmin(value))]
    coef, _ = phi(theta)
    coef = coef[0]
    resid = data.r - (design(theta, d, n)[0] @ coef)

    def predict(x: NDArray[np.float64], nn: NDArray[np.float64]) -> NDArray[np.float64]:
        x, nn = np.broadcast_arrays(np.asarray(x, float), np.asarray(nn, float))
        X = design(theta, x.reshape(-1), nn.reshape(-1))[0]
        return (X @ coef).reshape(x.shape)

    names = ["alpha", "g" if power_k else "a", "b"]
    params = {
        **dict(zip(names, map(float, np.exp(theta)), strict=True)),
        **dict(zip(["E", "A", "B", "C"], map(float, coef), strict=True)),
    }
    return _finish(
        "separable",
        7,
        resid,
        data.w,
        params,
        predict,
        "d* moves with n only through the training loss",
    )


def fit_baselines(data: FitData, model: TradeoffModel) -> list[Baseline]:
    """All baselines that the data support."""
    out = []
    per_budget = quadratic_per_budget(data)
    if per_budget is not None and data.n_runs > per_budget.n_params + 2:
        out.append(per_budget)
    if data.n_runs > 8:
        out.append(pooled_quadratic(data))
    if data.n_runs > 9:
        out.append(separable(data, model))
    return out
