"""The binary kl divergence, float64, vectorised, to full relative precision.

Let :math:`q` and :math:`p` be Bernoulli means. This module computes

.. math::

    \\mathrm{kl}(q \\,\\|\\, p) = q \\ln\\frac{q}{p} + (1-q)\\ln\\frac{1-q}{1-p},

and holds the plumbing that the kl-inverses (:mod:`pacbound._kl_inverse`) share with it: input
checks, broadcasting to flat blocks, and a ``log1p`` at the cost of one ``log`` (Goldberg's
``log(u) - ((u - 1) - z)/u`` correction with ``u = 1 + z``, as accurate as ``log1p``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pacbound.support._validation import as_float_array, check_in_interval

__all__ = ["kl_bernoulli"]

TINY = float(np.finfo(np.float64).tiny)  # smallest normal double
CHUNK = 16384  # elements per block: keeps the working set in cache


# --------------------------------------------------------------------------------------------
# shared plumbing (also used by pacbound._kl_inverse)
# --------------------------------------------------------------------------------------------


def checked_flat_inputs(
    q: ArrayLike, other: ArrayLike, other_name: str, other_high: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], tuple[int, ...], bool]:
    """Check ``q`` in [0, 1] and ``other`` in [0, other_high]; broadcast and flatten both.

    Returns the two contiguous 1-D float64 arrays, their broadcast shape and whether both
    inputs were scalars. NaN passes through (NaN in gives NaN out).
    """
    q_flat, o_flat, shape, scalar = flat_inputs(q, other, other_name)
    check_flat_ranges(q_flat, o_flat, other_name, other_high)
    return q_flat, o_flat, shape, scalar


def flat_inputs(
    q: ArrayLike, other: ArrayLike, other_name: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], tuple[int, ...], bool]:
    """:func:`checked_flat_inputs` without the range checks (for callers that check later)."""
    q_arr = as_float_array(q, "q")
    o_arr = as_float_array(other, other_name)
    shape = (
        q_arr.shape if q_arr.shape == o_arr.shape else np.broadcast_shapes(q_arr.shape, o_arr.shape)
    )
    q_flat, o_flat = (
        np.ascontiguousarray(a if a.shape == shape else np.broadcast_to(a, shape)).reshape(-1)
        for a in (q_arr, o_arr)
    )
    return q_flat, o_flat, shape, q_arr.ndim == 0 and o_arr.ndim == 0


def check_flat_ranges(
    q: NDArray[np.float64], other: NDArray[np.float64], other_name: str, other_high: float
) -> None:
    """The range checks of :func:`checked_flat_inputs`, on its flattened arrays."""
    check_in_interval(q, "q", 0.0, 1.0)
    check_in_interval(other, other_name, 0.0, other_high)


def shaped(
    out: NDArray[np.float64], shape: tuple[int, ...], scalar: bool
) -> NDArray[np.float64] | np.float64:
    """``out`` in the broadcast shape; a numpy float when both inputs were scalars."""
    out = out.reshape(shape)
    return out[()] if scalar else out


def log1p_fast(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log1p`` for ``z > -1`` at the cost of one ``log`` (Goldberg's correction)."""
    u = 1.0 + z
    corr = u - 1.0
    corr -= z
    corr /= u
    out = np.log(u)
    out -= corr
    return out


# --------------------------------------------------------------------------------------------
# kl
# --------------------------------------------------------------------------------------------


def kl_bernoulli(q: ArrayLike, p: ArrayLike) -> NDArray[np.float64] | np.float64:
    r"""Binary kl divergence :math:`\mathrm{kl}(q\|p)`, elementwise, in float64.

    Let :math:`q` and :math:`p` represent ``q`` and ``p``. Then

    .. math::

        \mathrm{kl}(q\|p) = q\ln\frac{q}{p} + (1-q)\ln\frac{1-q}{1-p}, \qquad 0\ln 0 = 0,

    evaluated as :math:`q\,\phi(d/q) + (1-q)\,\phi(-d/(1-q))` with :math:`d = p - q` and
    :math:`\phi(y) = y - \ln(1+y) \ge 0`: two non-negative terms, each to a few ulp (the logs
    come from ``log1p`` of non-negative arguments, and :math:`\phi` from its ``atanh`` series
    when :math:`|y| \le 1/4`), so even :math:`\mathrm{kl} \approx 10^{-30}` keeps full
    relative precision.

    Parameters
    ----------
    q, p : array_like
        Bernoulli means in [0, 1]; they broadcast against each other. NaN gives NaN.

    Returns
    -------
    ndarray or numpy.float64
        ``kl(q || p) >= 0``; ``inf`` where ``p`` is 0 or 1 and ``q`` differs from it. A float
        when both inputs are scalars.

    Raises
    ------
    InvalidParameterError
        If ``q`` or ``p`` lies outside [0, 1].

    Examples
    --------
    >>> from pacbound import kl_bernoulli
    >>> round(float(kl_bernoulli(0.1, 0.2)), 12)
    0.036690014035
    """
    qf, pf, shape, scalar = checked_flat_inputs(q, p, "p", 1.0)
    out = np.empty(qf.shape, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for start in range(0, qf.size, CHUNK):
            stop = min(start + CHUNK, qf.size)
            out[start:stop] = _kl_block(qf[start:stop], pf[start:stop])
    return shaped(out, shape, scalar)


def _kl_block(q: NDArray[np.float64], p: NDArray[np.float64]) -> NDArray[np.float64]:
    """kl(q||p) on one block of 1-D arrays (see :func:`kl_bernoulli`)."""
    qc = 1.0 - q
    pc = 1.0 - p
    d = p - q
    sign = np.sign(d)
    ad = np.abs(d)
    low = np.minimum(q, p)
    high_c = np.minimum(qc, pc)
    # ln(p/q) and ln((1-p)/(1-q)), each from log1p of a non-negative argument
    z = ad / low
    np.minimum(z, 1e300, out=z)  # only reached for subnormal q or p; the term is ~0 there
    log_pq = log1p_fast(z)
    log_pq *= sign
    np.divide(ad, high_c, out=z)
    log_pcqc = log1p_fast(z)
    log_pcqc *= sign
    np.negative(log_pcqc, out=log_pcqc)
    # kl = q phi(d/q) + (1-q) phi(-d/(1-q)), phi(y) = y - log1p(y) >= 0: two terms >= 0
    term_q = d - q * log_pq
    term_qc = -d - qc * log_pcqc
    _phi_series_where_small(term_q, d, q)
    _phi_series_where_small(term_qc, -d, qc)
    np.maximum(term_q, 0.0, out=term_q)
    np.maximum(term_qc, 0.0, out=term_qc)
    term_q += term_qc
    edge = np.minimum(low, high_c) < TINY
    if edge.any():
        _kl_edges(q, p, term_q, edge)
    return term_q


# 1/(2k + 3), k = 0..10: phi(y) = y v - 2 v^3 sum_k v^(2k)/(2k + 3) with v = y/(2 + y)
_ATANH_COEFFS = tuple(1.0 / (2 * k + 3) for k in range(11))


def _phi_series_where_small(
    term: NDArray[np.float64], num: NDArray[np.float64], den: NDArray[np.float64]
) -> None:
    """Overwrite ``term = den * phi(num/den)`` where ``|num/den| <= 1/4`` by its series.

    phi(y) = y - log1p(y) loses digits to cancellation for small y (at most a factor 10 above
    |y| = 1/4); with log1p(y) = 2 atanh(y / (2 + y)) it becomes
    y v - 2 v^3 (1/3 + v^2/5 + ...), |v| <= 1/7, which has none (11 terms: the remainder is
    below 1e-18 relative).
    """
    small = np.flatnonzero(np.abs(num) <= 0.25 * den)
    if small.size == 0:
        return
    den_s = den[small]
    y = num[small] / den_s
    v = y / (2.0 + y)
    v2 = v * v
    acc = np.full(v.shape, _ATANH_COEFFS[-1])
    for coef in reversed(_ATANH_COEFFS[:-1]):
        acc *= v2
        acc += coef
    term[small] = den_s * (y * v - 2.0 * v * v2 * acc)


def _kl_edges(
    q: NDArray[np.float64],
    p: NDArray[np.float64],
    out: NDArray[np.float64],
    edge: NDArray[np.bool_],
) -> None:
    """q or p at 0 or 1 (0 ln 0 = 0; kl = inf off the support), or below the normal range."""
    qe, pe = q[edge], p[edge]
    with np.errstate(divide="ignore", invalid="ignore"):
        # direct form, exact enough when one of the four probabilities is below 2.2e-308
        val = np.where(qe > 0, qe * (np.log(qe) - np.log(pe)), 0.0)
        val += np.where(qe < 1, (1.0 - qe) * (np.log1p(-qe) - np.log1p(-pe)), 0.0)
    val = np.maximum(val, 0.0)
    val[((qe > 0) & (pe == 0)) | ((qe < 1) & (pe == 1))] = np.inf
    val[qe == pe] = 0.0
    val[np.isnan(qe) | np.isnan(pe)] = np.nan
    out[edge] = val
