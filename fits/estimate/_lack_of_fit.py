r"""Does the theory's form describe the runs? The pure-error lack-of-fit test.

Replicate seeds of a (d, n) cell measure the noise without any model. Let run :math:`i` of
cell :math:`c` have gap :math:`r_{ci}` and weight :math:`w_{ci}`, :math:`\bar r_c` the weighted
cell mean, :math:`W_c = \sum_i w_{ci}`, and :math:`\hat f_c` the fitted gap of cell :math:`c`
(:math:`C` cells, :math:`N` runs, :math:`p` fitted parameters). The weighted residual sum of
squares splits exactly into

.. math::

    \underbrace{\sum_{c,i} w_{ci}(r_{ci} - \bar r_c)^2}_{SS_{PE},\ N - C\ \mathrm{df}}
    + \underbrace{\sum_c W_c(\bar r_c - \hat f_c)^2}_{SS_{LOF},\ C - p\ \mathrm{df}},
    \qquad F = \frac{SS_{LOF}/(C-p)}{SS_{PE}/(N-C)} .

With equal weights and Gaussian noise of one variance, :math:`F \sim F(C-p, N-C)` when the model
is right (up to the linearisation of its shape parameters), which gives the p-value. With
inverse-variance weights estimated from the same seeds, :math:`F` is larger than that law says
(cells whose few seeds happen to agree get the large weights), so the p-value comes from a
parametric bootstrap of the null instead: runs drawn from the fitted cells with each cell's
(shrunk) variance, the weights re-estimated from each draw as the fit does, and the model refitted
in its Gauss-Newton linearisation at the optimum (the amplitudes exactly, the shape parameters to
first order). Without replicates (every cell one seed) there is no pure error: the test says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from fits.estimate._core import CoreFit, cell_problem
from fits.model._cells import FitData, inverse_variance_weights
from pacbound.support import check_in_interval, check_positive_int

__all__ = ["LackOfFit", "lack_of_fit"]

DEFAULT_ALPHA = 0.01
"""Reject the model's form at p < 0.01 unless told otherwise."""
_JACOBIAN_STEP = 1e-5


@dataclass(frozen=True)
class LackOfFit:
    """The pure-error lack-of-fit test of a fitted tradeoff.

    Attributes
    ----------
    testable : bool
        False without replicate seeds (no pure error); then the statistics are NaN.
    statistic : float
        :math:`F = (SS_{LOF}/df_{LOF}) / (SS_{PE}/df_{PE})`.
    df : tuple of int
        :math:`(df_{LOF}, df_{PE}) = (C - p, N - C)`.
    p_value : float
        Probability of an F at least this large if the model's form were right.
    alpha : float
        The level the verdict uses.
    method : str
        ``"F distribution"`` (equal weights) or ``"parametric bootstrap (B draws, ...)"``.
    ss_lof, ss_pe : float
        The two sums of squares (weighted as in the fit).
    reason : str
        Why the test could not be run (empty when it was).
    """

    testable: bool
    statistic: float
    df: tuple[int, int]
    p_value: float
    alpha: float
    method: str
    ss_lof: float = float("nan")
    ss_pe: float = float("nan")
    reason: str = ""

    @property
    def rejected(self) -> bool:
        """Whether the runs reject the model's form at ``alpha``."""
        return self.testable and bool(self.p_value < self.alpha)

    @property
    def verdict(self) -> str:
        """One sentence for summaries and reports."""
        if not self.testable:
            return f"lack of fit not testable: {self.reason}"
        head = f"lack of fit: F({self.df[0]}, {self.df[1]}) = {self.statistic:.3g}, {self.p_text}"
        if self.rejected:
            return (
                f"{head} < {self.alpha:g}: the theory's form does not describe these runs; "
                "d*(n) from the fitted curve is the model's, not the data's"
            )
        return f"{head} >= {self.alpha:g}: the runs do not reject the theory's form"

    @property
    def p_text(self) -> str:
        """``p = x``, or ``p <= x`` at the smallest p-value a bootstrap of this size can give."""
        draws = re.search(r"\((\d+) draws", self.method)
        if draws and self.p_value <= 1.0 / (int(draws.group(1)) + 1) + 1e-15:
            return f"p <= {self.p_value:.2g}"
        return f"p = {self.p_value:.3g}"

    def __str__(self) -> str:
        return self.verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "testable": self.testable,
            "statistic": self.statistic,
            "df": list(self.df),
            "p_value": self.p_value,
            "alpha": self.alpha,
            "rejected": self.rejected,
            "method": self.method,
            "ss_lof": self.ss_lof,
            "ss_pe": self.ss_pe,
            "reason": self.reason,
            "verdict": self.verdict,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> LackOfFit:
        """Rebuild from :meth:`to_dict` output (JSON writes the NaNs of an untested fit as null)."""

        def num(key: str) -> float:
            value = obj.get(key)
            return float("nan") if value is None else float(value)

        return cls(
            testable=bool(obj["testable"]),
            statistic=num("statistic"),
            df=(int(obj["df"][0]), int(obj["df"][1])),
            p_value=num("p_value"),
            alpha=float(obj["alpha"]),
            method=str(obj["method"]),
            ss_lof=num("ss_lof"),
            ss_pe=num("ss_pe"),
            reason=str(obj.get("reason", "")),
        )


def _sums(
    r: NDArray[np.float64], w: NDArray[np.float64], cell_of_run: NDArray[np.int_], n_cells: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Weighted cell means, cell weights and pure-error sums, batched over leading axes."""
    from fits.model._cells import cell_sums  # linear in the runs (no runs x cells one-hot)

    W = cell_sums(np.broadcast_to(w, np.shape(r)), cell_of_run, n_cells)
    mean = cell_sums(w * r, cell_of_run, n_cells) / W
    ss_pe = (w * (r - mean[..., cell_of_run]) ** 2).sum(axis=-1)
    return mean, W, ss_pe


def _jacobian(fit: CoreFit, data: FitData) -> NDArray[np.float64]:
    """d(fitted cell gaps)/d(shape parameters on their log scale, amplitudes): (C, p)."""
    model, problem = fit.model, cell_problem(fit.model, data)

    def fitted(theta: NDArray[np.float64]) -> NDArray[np.float64]:
        X = model.columns(theta[None], problem.d, problem.n, problem.q, problem.K)[0]
        return X @ fit.amps

    columns = []
    for j in range(model.n_shape):
        step = np.zeros(model.n_shape)
        step[j] = _JACOBIAN_STEP
        columns.append((fitted(fit.theta + step) - fitted(fit.theta - step)) / (2 * _JACOBIAN_STEP))
    X = model.columns(fit.theta[None], problem.d, problem.n, problem.q, problem.K)[0]
    return np.column_stack([*columns, X])


def lack_of_fit(
    fit: CoreFit,
    data: FitData,
    *,
    alpha: float = DEFAULT_ALPHA,
    n_resamples: int = 999,
    rng: int | np.random.Generator | None = 0,
) -> LackOfFit:
    r"""The pure-error lack-of-fit test of ``fit`` on ``data`` (see the module docstring).

    Parameters
    ----------
    fit : CoreFit
        The fitted model (its fitted cell gaps :math:`\hat f_c`).
    data : FitData
        The runs it was fitted to, with their weights :math:`w_{ci}`.
    alpha : float, default 0.01
        Level of the verdict ("the theory's form does not describe these runs" when p < alpha).
    n_resamples : int, default 999
        Parametric-bootstrap draws when the weights were estimated (inverse-variance).
    rng : int or Generator, default 0

    Returns
    -------
    LackOfFit
    """
    alpha = float(check_in_interval(alpha, "alpha", 0.0, 1.0, closed="neither", allow_nan=False))
    n_resamples = check_positive_int(n_resamples, "n_resamples", minimum=1)
    n_runs, n_cells = data.n_runs, data.n_cells
    n_params = len(fit.model.param_names)
    df = (n_cells - n_params, n_runs - n_cells)
    if df[1] <= 0:
        return LackOfFit(
            False, float("nan"), df, float("nan"), alpha, "none",
            reason="no replicates (one run per (d, n) cell): seeds are needed to measure pure error",
        )
    if df[0] <= 0:
        return LackOfFit(
            False, float("nan"), df, float("nan"), alpha, "none",
            reason=f"{n_cells} cells for {n_params} parameters leave no degrees of freedom for lack of fit",
        )
    mean, W, ss_pe = _sums(data.r, data.w, data.cell_of_run, n_cells)
    ss_lof = float(np.sum(W * (mean - fit.fitted_cells) ** 2))
    ss_pe = float(ss_pe)
    if not ss_pe > 0:
        return LackOfFit(
            False, float("nan"), df, float("nan"), alpha, "none", ss_lof, ss_pe,
            reason="the seeds of every cell agree exactly (zero pure error)",
        )
    statistic = (ss_lof / df[0]) / (ss_pe / df[1])
    binned = (
        "; cells are bins of a continuous difficulty, so the pure error also holds the trend "
        "within each bin and the test is conservative"
        if data.binning
        else ""
    )
    if data.weighting != "inverse-variance":
        p_value = float(stats.f.sf(statistic, *df))
        method = f"F distribution{' (' + binned[2:] + ')' if binned else ''}"
        return LackOfFit(True, statistic, df, p_value, alpha, method, ss_lof, ss_pe)
    null = _bootstrap_null(fit, data, n_resamples, np.random.default_rng(rng))
    p_value = float((1 + np.sum(null >= statistic)) / (len(null) + 1))
    method = (
        f"parametric bootstrap ({len(null)} draws; weights re-estimated per draw, "
        f"model linearised at the optimum{binned})"
    )
    return LackOfFit(True, statistic, df, p_value, alpha, method, ss_lof, ss_pe)


def _bootstrap_null(
    fit: CoreFit, data: FitData, n_resamples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """F statistics of runs drawn from the fitted cells with the cells' (shrunk) variances."""
    n_cells, cells = data.n_cells, data.cell_of_run
    # the cell variances the fit's weights stand for (the weights are 1 / shrunk variance,
    # normalised to mean one), put back on the residuals' scale
    _, _, ss_pe = _sums(data.r, data.w, cells, n_cells)
    scale = float(ss_pe) / (data.n_runs - n_cells)
    sd = np.sqrt(scale / data.w)
    draws = fit.fitted_cells[cells] + rng.standard_normal((n_resamples, data.n_runs)) * sd
    w = inverse_variance_weights(draws, cells, n_cells)
    mean, W, pe = _sums(draws, w, cells, n_cells)
    J = _jacobian(fit, data)
    resid = mean - fit.fitted_cells
    # weighted least squares of each draw's residual on the Jacobian, all draws at once through
    # their normal equations (C x p per draw: tiny); the column scaling keeps them well posed
    scale = np.linalg.norm(J, axis=0)
    Js = J / np.where(scale > 0, scale, 1.0)
    JtWJ = np.einsum("cp,bc,cq->bpq", Js, W, Js)
    JtWy = np.einsum("cp,bc->bp", Js, W * resid)
    coef = _solve(JtWJ, JtWy)
    fitted = coef @ Js.T
    lof = np.sum(W * (resid - fitted) ** 2, axis=1)
    df_lof = n_cells - len(fit.model.param_names)
    df_pe = data.n_runs - n_cells
    return (lof / df_lof) / (pe / df_pe)


def _solve(matrices: NDArray[np.float64], rhs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Batched least-squares solutions of ``matrices @ x = rhs`` (pseudo-inverse if singular)."""
    try:
        return np.linalg.solve(matrices, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("bpq,bq->bp", np.linalg.pinv(matrices), rhs)
