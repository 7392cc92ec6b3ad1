"""Bounds with a free parameter fixed in advance: Catoni's bound and the linear-in-lambda bound.

Both trade a parameter (Catoni's :math:`C`, Alquier's :math:`\\lambda`) whose best value depends
on the KL, i.e. on the data. A valid bound either fixes it before seeing the data or picks it
from a grid of :math:`k` values fixed in advance and pays :math:`\\ln k` (a union bound). The
result records the grid, the value attaining the minimum (per element) and the cost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from pacbound._bound_inputs import bound_inputs, make_result
from pacbound._results import BoundResult
from pacbound.exceptions import InvalidParameterError
from pacbound.support._validation import check_in_interval

__all__ = ["DEFAULT_CATONI_GRID", "DEFAULT_LAMBDA_GRID", "catoni", "linear_lambda"]

#: C in {2^(j/2) : j = -12, ..., 12}: 25 values from 1/64 to 64 (union cost ln 25).
DEFAULT_CATONI_GRID: tuple[float, ...] = tuple(2.0 ** (j / 2) for j in range(-12, 13))
#: lambda in {2^0, ..., 2^29}: 30 values (union cost ln 30), as in Alquier (2021).
DEFAULT_LAMBDA_GRID: tuple[float, ...] = tuple(2.0**j for j in range(30))


def _check_grid(grid: Sequence[float] | ArrayLike, name: str) -> tuple[float, ...]:
    arr = np.asarray(grid, dtype=np.float64).reshape(-1) if grid is not None else None
    if arr is None or arr.size == 0:
        raise InvalidParameterError(
            f"`{name}` must be a non-empty sequence of numbers > 0; got {grid!r}."
        )
    check_in_interval(arr, name, 0.0, math.inf, closed="neither", allow_nan=False)
    return tuple(float(v) for v in arr)


def catoni(
    emp_risk: ArrayLike,
    kl: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    *,
    C: ArrayLike | None = None,
    grid: Sequence[float] | None = None,
    union: Mapping[str, int] | None = None,
) -> BoundResult:
    r"""Catoni's bound, with :math:`C` fixed in advance or chosen from a grid fixed in advance.

    Let :math:`\hat r`, :math:`\mathrm{KL}`, :math:`n`, :math:`\delta` represent ``emp_risk``,
    ``kl``, ``n``, ``delta``. For a :math:`C > 0` fixed before seeing the data, with probability
    at least :math:`1-\delta`, for all :math:`Q`,

    .. math::

        R(Q) \le \frac{1 - \exp(-C\hat r - b)}{1 - e^{-C}}, \qquad
        b = \frac{\mathrm{KL} + \ln(1/\delta')}{n},

    computed as ``expm1(-C r - b) / expm1(-C)``. Over a grid of :math:`k` values fixed in
    advance the minimum is taken with :math:`\ln(k/\delta')` in place of
    :math:`\ln(1/\delta')`. The complexity term is :math:`b`. The infimum over all
    :math:`C > 0` equals :math:`\mathrm{kl}^{-1}(\hat r, b)`, which is not itself a valid bound.

    Parameters
    ----------
    emp_risk, kl, n, delta : array_like
        As in :func:`~pacbound.mcallester`; they broadcast together.
    C : array_like, optional
        A fixed :math:`C > 0` (no union cost); broadcasts with the inputs.
    grid : sequence of float, optional
        Values of :math:`C` fixed in advance; the bound is their minimum with the union cost.
        Default (when neither ``C`` nor ``grid`` is given): :data:`DEFAULT_CATONI_GRID`,
        25 values :math:`2^{j/2}`, :math:`j = -12 \dots 12`.
    union : mapping of str to int, optional
        Other grids fixed in advance, e.g. ``{"sigma grid": 12}``.

    Returns
    -------
    BoundResult
        With a grid, ``params["C"]`` is the grid value attaining the minimum, per element.

    References
    ----------
    Catoni (2007), "PAC-Bayesian supervised classification", Theorem 1.2.6, arXiv:0712.0248.

    Examples
    --------
    >>> from pacbound import catoni
    >>> round(catoni(0.02, 500, 30000, 0.025, C=1.0).value, 9)
    0.057142761
    """
    if C is not None and grid is not None:
        raise InvalidParameterError(
            f"`C` and `grid` are exclusive: pass a fixed C or a grid fixed in advance; "
            f"got C={C!r} and grid={grid!r}."
        )
    inputs = bound_inputs(emp_risk, kl, n, delta, union)
    if C is not None:
        c_arr = check_in_interval(C, "C", 0.0, math.inf, closed="neither")
        union_, deltas, d = inputs.split_delta()
        with np.errstate(divide="ignore", invalid="ignore"):
            b = (inputs.kl + np.log(1.0 / d)) / inputs.n
            value = np.expm1(-c_arr * inputs.emp_risk - b) / np.expm1(-c_arr)
        return make_result("catoni", inputs, value, b, union_, deltas, params={"C": c_arr})
    values = _check_grid(DEFAULT_CATONI_GRID if grid is None else grid, "grid")
    union_, deltas, d = inputs.split_delta({"C grid": len(values)})
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (inputs.kl + np.log(1.0 / d)) / inputs.n
        cs = np.asarray(values).reshape((-1,) + (1,) * np.ndim(b + inputs.emp_risk))
        table = np.expm1(-cs * inputs.emp_risk - b) / np.expm1(-cs)
    best = np.argmin(np.where(np.isnan(table), np.inf, table), axis=0)
    value = np.take_along_axis(table, best[None], axis=0)[0]
    chosen = np.asarray(values)[best]
    return make_result(
        "catoni", inputs, value, b, union_, deltas, grid=values, params={"C": chosen}
    )


def linear_lambda(
    emp_risk: ArrayLike,
    kl: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    *,
    lambdas: Sequence[float] | None = None,
    loss_range: float = 1.0,
    sub_gaussian: float | None = None,
    union: Mapping[str, int] | None = None,
) -> BoundResult:
    r"""The linear-in-lambda bound (Alquier 2021, Theorem 2.1) over a grid fixed in advance.

    Let :math:`\hat r`, :math:`\mathrm{KL}`, :math:`n`, :math:`\delta` represent ``emp_risk``,
    ``kl``, ``n``, ``delta`` and :math:`B` the loss range. For a fixed :math:`\lambda > 0`,
    with probability at least :math:`1-\delta`, for all :math:`Q`,

    .. math::

        R(Q) \le \hat r + \frac{\lambda \kappa}{n} + \frac{\mathrm{KL} + \ln(1/\delta')}{\lambda},
        \qquad \kappa = B^2/8 \ \text{(loss in } [0,B]) \text{ or } \sigma^2/2
        \ (\sigma^2\text{-sub-Gaussian loss)}.

    The optimal :math:`\lambda = \sqrt{n(\mathrm{KL} + \ln 1/\delta')/\kappa}` depends on the
    KL, so the bound is the minimum over a grid of :math:`k` values fixed in advance with
    :math:`\ln(k/\delta')`. The complexity term is the sum of the last two terms at the chosen
    :math:`\lambda`.

    Parameters
    ----------
    emp_risk, kl, n, delta : array_like
        As in :func:`~pacbound.mcallester`; ``emp_risk`` in [0, ``loss_range``] (any real for
        a sub-Gaussian loss).
    lambdas : sequence of float, optional
        The grid; default :data:`DEFAULT_LAMBDA_GRID` (:math:`2^0, \dots, 2^{29}`).
    loss_range : float, default: 1.0
        :math:`B`, for losses in :math:`[0, B]`.
    sub_gaussian : float, optional
        :math:`\sigma` for :math:`\sigma^2`-sub-Gaussian losses (replaces ``loss_range``).
    union : mapping of str to int, optional
        Other grids fixed in advance.

    Returns
    -------
    BoundResult
        ``params["lambda"]`` is the grid value attaining the minimum, per element.

    References
    ----------
    Alquier (2021), "User-friendly introduction to PAC-Bayes bounds", arXiv:2110.11216.

    Examples
    --------
    >>> from pacbound import linear_lambda
    >>> round(linear_lambda(0.02, 500, 30000, 0.025).value, 9)
    0.116033977
    """
    if sub_gaussian is None:
        b_range = float(
            check_in_interval(
                loss_range, "loss_range", 0.0, math.inf, closed="neither", allow_nan=False
            )
        )
        kappa = b_range**2 / 8.0
        risk_range = (0.0, b_range)
    else:
        sigma = float(
            check_in_interval(
                sub_gaussian, "sub_gaussian", 0.0, math.inf, closed="neither", allow_nan=False
            )
        )
        kappa = sigma**2 / 2.0
        risk_range = (-math.inf, math.inf)
    values = _check_grid(DEFAULT_LAMBDA_GRID if lambdas is None else lambdas, "lambdas")
    inputs = bound_inputs(emp_risk, kl, n, delta, union, risk_range=risk_range)
    union_, deltas, d = inputs.split_delta({"lambda grid": len(values)})
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = inputs.kl + np.log(1.0 / d)
        lam = np.asarray(values).reshape((-1,) + (1,) * np.ndim(cost + inputs.emp_risk + inputs.n))
        gap = lam * kappa / inputs.n + cost / lam
    best = np.argmin(np.where(np.isnan(gap), np.inf, gap), axis=0)
    complexity = np.take_along_axis(gap, best[None], axis=0)[0]
    value = inputs.emp_risk + complexity
    params = {
        "lambda": np.asarray(values)[best],
        "loss_range": None if sub_gaussian is not None else float(loss_range),
        "sub_gaussian": None if sub_gaussian is None else float(sub_gaussian),
        "kappa": kappa,
    }
    return make_result(
        "linear_lambda", inputs, value, complexity, union_, deltas, grid=values, params=params
    )
