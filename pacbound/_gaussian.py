"""KL divergence between diagonal Gaussians, in a form that survives posteriors near the prior.

A fine-tuned posterior sits close to a pretrained prior: with a million coordinates and
:math:`\\sigma_q/\\sigma_p = 1 + 10^{-4}` the KL is 0.0099997 nats, and the textbook formula in
float32 returns 0. Here each coordinate contributes

.. math::

    \\tfrac12\\left[(e^{x} - 1 - x) + \\frac{(\\mu_q - \\mu_p)^2}{\\sigma_p^2}\\right],
    \\qquad x = \\ln\\sigma_q^2 - \\ln\\sigma_p^2,

with :math:`e^x - 1 - x` from its Taylor series when :math:`|x| < 0.2` (no cancellation at all)
and from ``expm1`` otherwise, every term in float64 and summed pairwise in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pacbound.support._validation import check_broadcast, check_in_interval, check_integer_array

__all__ = ["gaussian_kl_diagonal", "gaussian_kl_grouped"]

_CHUNK = 1 << 20
_SERIES_LIMIT = 0.2
# 1/k! for k = 2..15: e^x - 1 - x = sum_k x^k / k!, truncation < 1e-21 relative for |x| < 0.2
_INV_FACTORIALS = tuple(1.0 / math.factorial(k) for k in range(2, 16))


def _expm1_minus_x(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """e^x - 1 - x to full relative precision, elementwise."""
    out = np.expm1(x) - x
    small = np.abs(x) < _SERIES_LIMIT
    if small.any():
        xs = x[small]
        acc = np.full(xs.shape, _INV_FACTORIALS[-1])
        for coef in reversed(_INV_FACTORIALS[:-1]):
            acc = acc * xs + coef
        out[small] = acc * xs * xs
    return out


def _finite(value: ArrayLike, name: str) -> NDArray[np.float64]:
    return check_in_interval(value, name, -math.inf, math.inf, closed="neither", allow_nan=False)


def _positive(value: ArrayLike, name: str) -> NDArray[np.float64]:
    return check_in_interval(value, name, 0.0, math.inf, closed="neither", allow_nan=False)


def _broadcast_flat(**arrays: NDArray[np.float64]) -> tuple[int, list[NDArray[np.float64]]]:
    """The broadcast size and each array flattened to it (size-1 arrays as 0-d scalars)."""
    shape = check_broadcast(**arrays)
    out = []
    for a in arrays.values():
        if a.size == 1:
            out.append(a.reshape(()))  # scalars broadcast inside each chunk for free
        else:
            out.append(np.broadcast_to(a, shape).reshape(-1))
    return math.prod(shape), out


def gaussian_kl_diagonal(
    mu_q: ArrayLike, var_q: ArrayLike, mu_p: ArrayLike, var_p: ArrayLike
) -> float:
    r"""KL(Q || P) between diagonal Gaussians, summed over all coordinates, in nats.

    Let :math:`\mu_q, \sigma_q^2, \mu_p, \sigma_p^2` represent ``mu_q``, ``var_q``, ``mu_p``,
    ``var_p`` (they broadcast, so a scalar prior variance is fine). Then

    .. math::

        \mathrm{KL}(Q\|P) = \frac12 \sum_i \left[\ln\frac{\sigma_{p,i}^2}{\sigma_{q,i}^2}
        + \frac{\sigma_{q,i}^2 + (\mu_{q,i} - \mu_{p,i})^2}{\sigma_{p,i}^2} - 1\right],

    evaluated in the stable form of the module notes, in float64 (inputs of any float dtype
    are converted block by block, so memory stays bounded).

    Parameters
    ----------
    mu_q, var_q : array_like
        Posterior means (finite) and variances (> 0, finite).
    mu_p, var_p : array_like
        Prior means and variances.

    Returns
    -------
    float
        The KL in nats (>= 0).

    Raises
    ------
    InvalidParameterError
        For a non-finite mean, a variance that is not positive and finite, or shapes that do
        not broadcast.

    Examples
    --------
    >>> from pacbound import gaussian_kl_diagonal
    >>> round(gaussian_kl_diagonal([0.0, 1.0], 1.0, 0.0, 2.0), 12)
    0.44314718056
    """
    size, (mq, vq, mp, vp) = _broadcast_flat(
        mu_q=_finite(mu_q, "mu_q"),
        var_q=_positive(var_q, "var_q"),
        mu_p=_finite(mu_p, "mu_p"),
        var_p=_positive(var_p, "var_p"),
    )
    total = 0.0
    for start in range(0, size, _CHUNK):
        stop = min(start + _CHUNK, size)
        vq_c, vp_c, mq_c, mp_c = (a if a.ndim == 0 else a[start:stop] for a in (vq, vp, mq, mp))
        x = np.atleast_1d(np.log(vq_c) - np.log(vp_c))
        diff = mq_c - mp_c
        term = _expm1_minus_x(x) + diff * diff / vp_c
        term = np.broadcast_to(term, (stop - start,))
        total += float(np.sum(term, dtype=np.float64))
    return 0.5 * total


def gaussian_kl_grouped(
    numel: ArrayLike,
    sq_delta: ArrayLike,
    var_q: ArrayLike,
    var_p: ArrayLike,
    *,
    per_group: bool = False,
) -> float | NDArray[np.float64]:
    r"""KL(Q || P) from sufficient statistics: one variance per group of coordinates.

    Let :math:`n_l, S_l, \sigma_{q,l}^2, \sigma_{p,l}^2` represent ``numel``, ``sq_delta``,
    ``var_q``, ``var_p`` for group :math:`l` (e.g. a weight tensor), with
    :math:`S_l = \lVert \mu_{q,l} - \mu_{p,l} \rVert^2` and :math:`\rho_l = \sigma_{q,l}^2 /
    \sigma_{p,l}^2`. Then

    .. math::

        \mathrm{KL}(Q\|P) = \sum_l \left[\frac{n_l}{2}(\rho_l - 1 - \ln\rho_l)
        + \frac{S_l}{2\sigma_{p,l}^2}\right],

    with :math:`\rho - 1 - \ln\rho = e^x - 1 - x`, :math:`x = \ln\rho`, evaluated without
    cancellation. With equal variances everywhere it is :math:`\lVert\Delta\rVert^2/(2\sigma^2)`.

    Parameters
    ----------
    numel : array_like of int
        Coordinates per group, >= 0.
    sq_delta : array_like
        Squared distance between the means per group, >= 0 (finite).
    var_q, var_p : array_like
        Posterior and prior variance per group, > 0 (finite). All four broadcast.
    per_group : bool, default: False
        Return the array of per-group terms instead of their sum.

    Returns
    -------
    float or ndarray
        The KL in nats (or its terms).

    Examples
    --------
    >>> from pacbound import gaussian_kl_grouped
    >>> gaussian_kl_grouped([10, 20], [0.5, 2.0], 0.01, 0.01)
    125.0
    """
    n = check_integer_array(numel, "numel", 0)
    s = check_in_interval(sq_delta, "sq_delta", 0.0, math.inf, closed="left", allow_nan=False)
    vq = _positive(var_q, "var_q")
    vp = _positive(var_p, "var_p")
    check_broadcast(numel=n, sq_delta=s, var_q=vq, var_p=vp)
    x = np.log(vq) - np.log(vp)
    shape_term = _expm1_minus_x(np.atleast_1d(np.asarray(x, dtype=np.float64))).reshape(np.shape(x))
    terms = 0.5 * n * shape_term + s / (2.0 * vp)
    terms = np.asarray(terms, dtype=np.float64)
    if per_group:
        return terms
    return float(np.sum(terms, dtype=np.float64))
