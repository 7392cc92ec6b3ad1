"""Certificates: Dziugaite-Roy's prior-variance grid, the Monte-Carlo step, test-set bounds.

These are the pieces that turn a trained posterior into a number that holds with a stated
probability: the prior variance picked from a countable grid (Dziugaite & Roy 2017), the Gibbs
risk estimated from a finite number of posterior samples (a second, separately charged
confidence), and the exact binomial tail for a held-out test set (Langford 2005).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaincinv

from pacbound._bound_inputs import bound_inputs, make_result
from pacbound._bounds import kl_bound
from pacbound._catoni import catoni
from pacbound._kl_inverse import kl_inv_upper
from pacbound._results import BoundResult
from pacbound.exceptions import InvalidParameterError
from pacbound.support._validation import check_choice, check_in_interval, check_integer_array

__all__ = [
    "dziugaite_roy",
    "dziugaite_roy_grid",
    "mc_certificate",
    "test_set_bound",
    "test_set_lower_bound",
]

_GRID_TOL = 1e-9


def dziugaite_roy_grid(
    prior_var: ArrayLike,
    *,
    scale: float = 0.1,
    rate: float = 100.0,
    rounding: str = "nearest",
) -> tuple[NDArray[np.int64] | int, NDArray[np.float64] | float]:
    r"""Project prior variances onto Dziugaite and Roy's grid :math:`\lambda_j = c\,e^{-j/b}`.

    Let :math:`c` and :math:`b` represent ``scale`` and ``rate``. The grid is
    :math:`\{c\,e^{-j/b} : j = 1, 2, \dots\}`; the index of a variance :math:`\lambda` is
    :math:`j = b\ln(c/\lambda)`, rounded as asked and never below 1 (variances at or above
    :math:`c\,e^{-1/b}` map to :math:`j = 1`). Evaluate the KL at the returned grid variance,
    then call :func:`dziugaite_roy` with ``j``.

    Parameters
    ----------
    prior_var : array_like
        Prior variances, > 0.
    scale : float, default: 0.1
        :math:`c`, the largest variance of the grid (at :math:`j = 0`, which is excluded).
    rate : float, default: 100.0
        :math:`b`, the grid's density (points per unit of log-variance).
    rounding : {"nearest", "up", "down"}, default: "nearest"
        How :math:`b\ln(c/\lambda)` becomes an integer ("up" gives a smaller variance).

    Returns
    -------
    j : int or ndarray of int
        Grid indices, >= 1.
    grid_var : float or ndarray
        :math:`c\,e^{-j/b}`.

    Examples
    --------
    >>> from pacbound import dziugaite_roy_grid
    >>> dziugaite_roy_grid(0.05)[0]
    69
    """
    check_choice(rounding, "rounding", ("nearest", "up", "down"))
    c = float(check_in_interval(scale, "scale", 0.0, math.inf, closed="neither", allow_nan=False))
    b = float(check_in_interval(rate, "rate", 0.0, math.inf, closed="neither", allow_nan=False))
    var = check_in_interval(
        prior_var, "prior_var", 0.0, math.inf, closed="neither", allow_nan=False
    )
    raw = b * np.log(c / var)
    rounder = {"nearest": np.rint, "up": np.ceil, "down": np.floor}[rounding]
    j = np.maximum(rounder(raw), 1.0).astype(np.int64)
    grid_var = c * np.exp(-j / b)
    if np.ndim(j) == 0:
        return int(j), float(grid_var)
    return j, grid_var


def dziugaite_roy(
    emp_risk: ArrayLike,
    kl: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    *,
    j: ArrayLike | None = None,
    prior_var: ArrayLike | None = None,
    scale: float = 0.1,
    rate: float = 100.0,
    union: Mapping[str, int] | None = None,
) -> BoundResult:
    r"""Dziugaite and Roy's kl bound with the prior variance chosen from a countable grid.

    Let :math:`\hat r`, :math:`\mathrm{KL}`, :math:`m`, :math:`\delta` represent ``emp_risk``,
    ``kl``, ``n``, ``delta``. The prior is :math:`N(w_0, \lambda_j I)` with
    :math:`\lambda_j = c\,e^{-j/b}`, :math:`j \ge 1`, and weight :math:`6/(\pi^2 j^2)` on grid
    point :math:`j`. With probability at least :math:`1-\delta`, for all :math:`Q` and all
    :math:`j`,

    .. math::

        \mathrm{kl}(\hat r \,\|\, R(Q)) \le \frac{\mathrm{KL} + 2\ln j + \ln(\pi^2 m/(6\delta'))}{m - 1}.

    The complexity term is that budget. ``kl`` must be KL(Q||P) for the prior at grid point
    ``j``: project a variance first with :func:`dziugaite_roy_grid`.

    Parameters
    ----------
    emp_risk, kl, delta : array_like
        As in :func:`~pacbound.mcallester`.
    n : array_like of int
        :math:`m`, the size of the bound set, >= 2.
    j : array_like of int, optional
        Grid indices (>= 1). Give either ``j`` or ``prior_var``.
    prior_var : array_like, optional
        Prior variances, which must lie on the grid (within 1e-9 in :math:`b\ln(c/\lambda)`).
    scale, rate : float
        :math:`c` (default 0.1) and :math:`b` (default 100) of the grid.
    union : mapping of str to int, optional
        Other grids fixed in advance.

    Returns
    -------
    BoundResult
        ``params`` holds ``j`` and the grid variance; ``deltas["prior grid"]`` is
        :math:`6\delta'/(\pi^2 j^2)`.

    References
    ----------
    Dziugaite & Roy (2017), "Computing nonvacuous generalization bounds for deep (stochastic)
    neural networks with many more parameters than training data", arXiv:1703.11008.

    Examples
    --------
    >>> from pacbound import dziugaite_roy
    >>> round(dziugaite_roy(0.028, 5144, 55000, 0.025, j=1).value, 3)
    0.161
    """
    if (j is None) == (prior_var is None):
        raise InvalidParameterError(
            f"exactly one of `j` and `prior_var` must be given; got j={j!r}, prior_var={prior_var!r}."
        )
    c = float(check_in_interval(scale, "scale", 0.0, math.inf, closed="neither", allow_nan=False))
    b = float(check_in_interval(rate, "rate", 0.0, math.inf, closed="neither", allow_nan=False))
    if prior_var is not None:
        var = check_in_interval(
            prior_var, "prior_var", 0.0, math.inf, closed="neither", allow_nan=False
        )
        raw = b * np.log(c / var)
        idx = np.rint(raw)
        off = (np.abs(raw - idx) > _GRID_TOL) | (idx < 1)
        if off.any():
            bad = float(var[off].flat[0]) if np.ndim(var) else float(var)
            near, near_var = dziugaite_roy_grid(bad, scale=c, rate=b)
            raise InvalidParameterError(
                f"`prior_var` must lie on the grid {c:g}*exp(-j/{b:g}), j = 1, 2, ...; got {bad!r} "
                f"(nearest grid point j={near}, variance {near_var!r}). Project it with "
                "dziugaite_roy_grid() and evaluate the KL there."
            )
        j_arr = idx
    else:
        j_arr = check_integer_array(j, "j", 1)
    inputs = bound_inputs(emp_risk, kl, n, delta, union, min_n=2)
    union_, deltas, d = inputs.split_delta()
    weight = 6.0 / (math.pi**2 * j_arr**2)
    deltas["prior grid"] = inputs.output(d * weight)
    with np.errstate(divide="ignore", invalid="ignore"):
        budget = (inputs.kl + 2.0 * np.log(j_arr) + np.log(math.pi**2 * inputs.n / (6.0 * d))) / (
            inputs.n - 1.0
        )
    value = kl_inv_upper(inputs.emp_risk, budget)
    params = {
        "j": j_arr.astype(np.int64) if np.ndim(j_arr) else int(j_arr),
        "prior_var": c * np.exp(-j_arr / b),
        "scale": c,
        "rate": b,
    }
    return make_result("dziugaite_roy", inputs, value, budget, union_, deltas, params=params)


def mc_certificate(
    mc_risk: ArrayLike,
    kl: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    *,
    m: ArrayLike,
    delta_mc: ArrayLike,
    bound: str = "kl",
    xi: str = "2sqrt",
    C: ArrayLike | None = None,
    grid: Sequence[float] | None = None,
    union: Mapping[str, int] | None = None,
) -> BoundResult:
    r"""A risk certificate from a Monte-Carlo estimate of the Gibbs risk, then PAC-Bayes.

    Let :math:`\hat q` be the empirical risk averaged over :math:`m` posterior samples
    (``mc_risk``; each sample's risk on the bound set). With probability at least
    :math:`1-\delta'` (``delta_mc``) over the sampling, the Gibbs empirical risk satisfies

    .. math::

        \hat r \le \mathrm{kl}^{-1}\!\left(\hat q, \frac{\ln(1/\delta')}{m}\right),

    and the PAC-Bayes bound (``bound="kl"`` or ``"catoni"``) is then evaluated at that value
    with confidence :math:`1-\delta`. The certificate holds with probability at least
    :math:`1-\delta-\delta'`.

    Parameters
    ----------
    mc_risk : array_like
        Mean empirical risk of the :math:`m` sampled predictors, in [0, 1].
    kl, n, delta : array_like
        As in :func:`~pacbound.kl_bound`.
    m : array_like of int
        Number of posterior samples, >= 1.
    delta_mc : array_like
        Failure probability of the Monte-Carlo step, in (0, 1); ``delta + delta_mc < 1``.
    bound : {"kl", "catoni"}, default: "kl"
        The PAC-Bayes bound applied after the Monte-Carlo step.
    xi : {"2sqrt", "exact", "n+1"}, default: "2sqrt"
        For ``bound="kl"``.
    C, grid : optional
        For ``bound="catoni"`` (see :func:`~pacbound.catoni`).
    union : mapping of str to int, optional
        Grids fixed in advance, charged to the PAC-Bayes step.

    Returns
    -------
    BoundResult
        ``params["mc_risk_bound"]`` is the Monte-Carlo upper bound on the Gibbs risk;
        ``deltas`` holds ``"monte carlo"`` and ``"pac-bayes"``; ``delta`` is the total.

    References
    ----------
    Langford & Caruana (2001); Pérez-Ortiz et al. (2021), JMLR 22, arXiv:2007.12911.

    Examples
    --------
    >>> from pacbound import mc_certificate
    >>> r = mc_certificate(0.05, 500, 30000, 0.025, m=1000, delta_mc=0.005)
    >>> round(r.params["mc_risk_bound"], 12)
    0.075651096327
    """
    check_choice(bound, "bound", ("kl", "catoni"))
    q_mc = check_in_interval(mc_risk, "mc_risk", 0.0, 1.0)
    m_arr = check_integer_array(m, "m", 1)
    d_mc = check_in_interval(delta_mc, "delta_mc", 0.0, 1.0, closed="neither")
    d_pb = check_in_interval(delta, "delta", 0.0, 1.0, closed="neither")
    total = d_pb + d_mc
    if np.any(total >= 1.0):
        raise InvalidParameterError(
            f"`delta + delta_mc` must be < 1; got {float(np.max(total))!r}."
        )
    mc_budget = np.log(1.0 / d_mc) / m_arr
    q_bound = kl_inv_upper(q_mc, mc_budget)
    if bound == "kl":
        inner = kl_bound(q_bound, kl, n, delta, xi=xi, union=union)
    else:
        inner = catoni(q_bound, kl, n, delta, C=C, grid=grid, union=union)
    inputs = bound_inputs(mc_risk, kl, n, delta, None)
    out = inputs.output
    deltas = {"total": out(total), "monte carlo": out(d_mc), "pac-bayes": out(d_pb)}
    deltas.update({f"pac-bayes/{k}": v for k, v in inner.deltas.items() if k != "total"})
    params = {
        "bound": bound,
        "m": m_arr,
        "delta_mc": d_mc,
        "mc_complexity": mc_budget,
        "mc_risk_bound": q_bound,
        **inner.params,
    }
    result = make_result(
        "mc_certificate",
        inputs,
        inner.value,
        inner.complexity,
        dict(inner.union),
        deltas,
        grid=inner.grid,
        params=params,
    )
    return BoundResult(**{**result.__dict__, "delta": out(total)})


def test_set_bound(
    k: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    *,
    union: Mapping[str, int] | None = None,
) -> BoundResult:
    r"""The exact binomial-tail bound on the risk from ``k`` errors on ``n`` held-out examples.

    Let :math:`k`, :math:`n`, :math:`\delta` represent ``k``, ``n``, ``delta``. With probability
    at least :math:`1-\delta`,

    .. math::

        R \le \max\{p : \Pr[\mathrm{Bin}(n, p) \le k] \ge \delta\}
          = \mathrm{Beta}^{-1}(1-\delta;\ k + 1,\ n - k),

    which is 1 for :math:`k = n`. It is never looser than the Chernoff form
    :math:`\mathrm{kl}^{-1}(k/n, \ln(1/\delta)/n)`, reported in ``params["chernoff"]``; the
    complexity term is that form's budget :math:`\ln(1/\delta)/n`. The value is rounded up by
    4 ulp against the rounding error of the inverse incomplete beta function.

    Parameters
    ----------
    k : array_like of int
        Errors on the test set, 0 <= k <= n.
    n : array_like of int
        Test-set size, >= 1.
    delta : array_like
        Failure probability in (0, 1).
    union : mapping of str to int, optional
        Grids fixed in advance (e.g. several models evaluated on the same test set).

    Returns
    -------
    BoundResult
        ``emp_risk = k/n``, ``kl = 0``.

    References
    ----------
    Langford (2005), "Tutorial on practical prediction theory for classification", JMLR 6.

    Examples
    --------
    >>> from pacbound import test_set_bound
    >>> round(test_set_bound(100, 10000, 0.01).value, 10)
    0.012567582
    """
    k_arr = check_integer_array(k, "k", 0)
    n_arr = check_integer_array(n, "n", 1)
    over = k_arr > n_arr
    if np.any(over):
        bad = np.broadcast_to(k_arr, np.broadcast_shapes(k_arr.shape, n_arr.shape))[
            np.broadcast_to(over, np.broadcast_shapes(k_arr.shape, n_arr.shape))
        ]
        raise InvalidParameterError(
            f"`k` must be an integer in [0, n]; got {float(bad.flat[0])!r}."
        )
    inputs = bound_inputs(k_arr / n_arr, 0.0, n_arr, delta, union)
    union_, deltas, d = inputs.split_delta()
    with np.errstate(divide="ignore", invalid="ignore"):
        full = k_arr >= n_arr
        tail = betaincinv(k_arr + 1.0, np.where(full, 1.0, n_arr - k_arr), 1.0 - d)
        value = np.where(full, 1.0, np.minimum(tail * (1.0 + 2.0**-50), 1.0))
        budget = np.log(1.0 / d) / n_arr
    chernoff = kl_inv_upper(k_arr / n_arr, budget)
    return make_result(
        "test_set",
        inputs,
        value,
        budget,
        union_,
        deltas,
        params={"k": k_arr.astype(np.int64), "chernoff": chernoff},
    )


test_set_bound.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def test_set_lower_bound(k: ArrayLike, n: ArrayLike, delta: ArrayLike) -> NDArray[np.float64]:
    r"""The exact binomial-tail *lower* confidence bound on the risk from ``k`` errors in ``n``.

    Let :math:`k`, :math:`n`, :math:`\delta` represent ``k``, ``n``, ``delta``. With probability
    at least :math:`1-\delta`,

    .. math::

        R \ge \min\{p : \Pr[\mathrm{Bin}(n, p) \ge k] \ge \delta\}
          = \mathrm{Beta}^{-1}(\delta;\ k,\ n - k + 1),

    which is 0 for :math:`k = 0`. The mirror of :func:`test_set_bound`: where it says how bad a
    model can be, this says how good it cannot be. Since any sound certificate of a model is at
    least its risk (with probability :math:`1-\delta` for the certificate's own δ), a lower
    bound at or above a threshold shows that no certificate of that model, by any method, can go
    below the threshold (with probability at least :math:`1-\delta` over the held-out sample).
    The value is rounded down by 4 ulp against the rounding error of the inverse incomplete beta
    function.

    Parameters
    ----------
    k : array_like of int
        Errors on the held-out set, 0 <= k <= n.
    n : array_like of int
        Held-out set size, >= 1.
    delta : array_like
        Failure probability in (0, 1).

    Returns
    -------
    ndarray of float64
        The lower bound, in [0, k/n] (a 0-d array for scalar input).

    References
    ----------
    Clopper and Pearson (1934), "The use of confidence or fiducial limits illustrated in the
    case of the binomial", Biometrika 26.

    Examples
    --------
    >>> from pacbound import test_set_lower_bound
    >>> round(float(test_set_lower_bound(100, 10000, 0.01)), 10)
    0.007829753
    """
    k_arr = check_integer_array(k, "k", 0)
    n_arr = check_integer_array(n, "n", 1)
    d = check_in_interval(delta, "delta", 0.0, 1.0, closed="neither", allow_nan=False)
    k_b, n_b = np.broadcast_arrays(k_arr, n_arr)
    if np.any(k_b > n_b):
        raise InvalidParameterError(
            f"`k` must be an integer in [0, n]; got {int(k_b[k_b > n_b].flat[0])!r} errors in "
            f"{int(n_b[k_b > n_b].flat[0])!r} examples."
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        none = k_b <= 0
        tail = betaincinv(np.where(none, 1.0, k_b), n_b - k_b + 1.0, d)
        value = np.where(none, 0.0, np.maximum(tail * (1.0 - 2.0**-50), 0.0))
    return np.asarray(value, dtype=np.float64)


test_set_lower_bound.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
