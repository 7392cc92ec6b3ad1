"""McAllester, PAC-Bayes-kl, Thiemann and f_quad bounds, vectorised, with their pieces.

Notation: :math:`n` examples in the bound set, empirical (Gibbs) risk :math:`\\hat r \\in [0,1]`,
:math:`\\mathrm{KL} = \\mathrm{KL}(Q\\|P)` in nats, confidence :math:`1-\\delta`. Each bound holds
for all posteriors :math:`Q` simultaneously. Choices made on grids fixed in advance (a prior
variance chosen from 12 values, say) are charged with ``union={"sigma grid": 12}``: the formula
is evaluated at :math:`\\delta / \\prod_i k_i`, and the result records each grid and the delta
left after it (:class:`~pacbound.BoundResult`).

Input validation and the union-bound bookkeeping live in :mod:`pacbound._bound_inputs`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

from pacbound._bound_inputs import BoundInputs, bound_inputs, make_result
from pacbound._kl_inverse import kl_inv_upper
from pacbound._results import BoundResult
from pacbound.support._validation import check_choice, check_in_interval, check_integer_array

__all__ = ["f_quad", "kl_bound", "maurer_xi", "mcallester", "thiemann"]

XI_CHOICES = ("2sqrt", "exact", "n+1")


# --------------------------------------------------------------------------------------------
# Maurer's xi(n)
# --------------------------------------------------------------------------------------------

_XI_FULL = 1 << 17  # exact sum up to this n
_XI_EDGE = 4096  # terms summed exactly at each end above it


def _stirling_remainder(m: NDArray[np.float64]) -> NDArray[np.float64]:
    """r(m) = ln m! - (m ln m - m + ln(2 pi m)/2), accurate for every m >= 1."""
    out = np.empty_like(m)
    small = m < 10  # direct: lgamma is at most 15 there, so the difference keeps ~15 digits
    ms = m[small]
    out[small] = gammaln(ms + 1.0) - (ms * np.log(ms) - ms + 0.5 * np.log(2.0 * np.pi * ms))
    inv = 1.0 / m[~small]
    inv2 = inv * inv
    series = 1.0 / 1188.0 - inv2 * (691.0 / 360360.0)  # Stirling series, next term < 1e-15
    series = 1.0 / 1680.0 - inv2 * series
    series = 1.0 / 1260.0 - inv2 * series
    series = 1.0 / 360.0 - inv2 * series
    out[~small] = inv * (1.0 / 12.0 - inv2 * series)
    return out


def _xi_terms(n: float, k: NDArray[np.float64]) -> NDArray[np.float64]:
    """C(n,k) (k/n)^k (1-k/n)^(n-k) for 1 <= k <= n-1, without cancellation for large n."""
    rest = n - k
    log_t = 0.5 * np.log(n / (2.0 * np.pi * k * rest))
    log_t += (
        _stirling_remainder(np.array([n]))[0] - _stirling_remainder(k) - _stirling_remainder(rest)
    )
    return np.exp(log_t)


def _xi_one(n: float) -> float:
    if n == 1:
        return 2.0
    if n <= _XI_FULL:
        k = np.arange(1.0, n)
        return float(2.0 + np.sum(_xi_terms(n, k)))
    # exact terms at both ends; the middle bounded by an integral (the terms are at most the
    # convex function sqrt(n / (2 pi t (n - t))) at t = k, which is at most its mean over
    # [k - 1/2, k + 1/2]: Hermite-Hadamard), so the result is an upper bound on xi(n)
    k = np.arange(1.0, _XI_EDGE)
    ends = 2.0 * np.sum(_xi_terms(n, k))
    alpha = _XI_EDGE - 0.5
    middle = math.sqrt(n / (2.0 * math.pi)) * (math.pi - 4.0 * math.asin(math.sqrt(alpha / n)))
    return 2.0 + ends + middle


def maurer_xi(n: ArrayLike, *, kind: str = "exact") -> NDArray[np.float64] | float:
    r"""Maurer's constant :math:`\xi(n)` of the PAC-Bayes-kl bound, or its usual relaxations.

    Let :math:`n` represent ``n``. Then

    .. math::

        \xi(n) = \sum_{k=0}^{n} \binom{n}{k} \left(\frac{k}{n}\right)^k
                 \left(1-\frac{k}{n}\right)^{n-k}, \qquad \sqrt n \le \xi(n) \le 2\sqrt n,

    and :math:`\xi(n) \approx \sqrt{\pi n / 2} + 2/3` for large :math:`n`.

    Parameters
    ----------
    n : array_like of int
        Sample sizes, integers >= 1.
    kind : {"exact", "2sqrt", "n+1"}, default: "exact"
        ``"exact"`` sums the series (each term from Stirling's series with its exact remainder,
        so no cancellation even for n = 1e12); above n = 131072 the middle terms are replaced by
        a rigorous integral upper bound, within about 1e-6 relative. ``"2sqrt"`` is Maurer's
        :math:`2\sqrt n` and ``"n+1"`` Seeger's :math:`n+1`; both are upper bounds on the exact
        value.

    Returns
    -------
    ndarray or float
        :math:`\xi(n)` elementwise (a float for a scalar ``n``).

    References
    ----------
    Maurer (2004), "A note on the PAC Bayesian theorem", arXiv:cs/0411099.

    Examples
    --------
    >>> from pacbound import maurer_xi
    >>> round(maurer_xi(100), 4)
    13.21
    """
    check_choice(kind, "kind", XI_CHOICES)
    arr = check_integer_array(n, "n", 1)
    if kind == "2sqrt":
        out = 2.0 * np.sqrt(arr)
    elif kind == "n+1":
        out = arr + 1.0
    else:
        uniq, inverse = np.unique(arr, return_inverse=True)
        values = np.array([_xi_one(float(v)) for v in uniq])
        out = values[inverse].reshape(arr.shape)
    return float(out) if arr.ndim == 0 else out


# --------------------------------------------------------------------------------------------
# bounds
# --------------------------------------------------------------------------------------------


def _maurer_complexity(inputs: BoundInputs, d: NDArray[np.float64]) -> NDArray[np.float64]:
    """A = (KL + ln(2 sqrt(n)/delta')) / (2n): McAllester's gap is sqrt(A), Thiemann's uses A."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (inputs.kl + np.log(2.0 * np.sqrt(inputs.n) / d)) / (2.0 * inputs.n)


def mcallester(
    emp_risk: ArrayLike,
    kl: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    *,
    union: Mapping[str, int] | None = None,
) -> BoundResult:
    r"""McAllester's bound with Maurer's constant, for losses in [0, 1].

    Let :math:`\hat r`, :math:`\mathrm{KL}`, :math:`n`, :math:`\delta` represent ``emp_risk``,
    ``kl``, ``n``, ``delta``, and :math:`\delta'` the delta left after the union bounds. With
    probability at least :math:`1-\delta`, for all :math:`Q`,

    .. math::

        R(Q) \le \hat r + \sqrt{\frac{\mathrm{KL} + \ln(2\sqrt n/\delta')}{2n}}.

    The complexity term is the square root.

    Parameters
    ----------
    emp_risk : array_like
        Empirical Gibbs risk in [0, 1].
    kl : array_like
        KL(Q||P) in nats, >= 0.
    n : array_like of int
        Size of the bound set (>= 1), disjoint from any data the prior saw.
    delta : array_like
        Failure probability in (0, 1).
    union : mapping of str to int, optional
        Grids fixed in advance that the posterior or prior was chosen from, e.g.
        ``{"sigma grid": 12}``.

    Returns
    -------
    BoundResult
        ``value`` broadcast over the inputs. Values above 1 are vacuous.

    References
    ----------
    McAllester (1999, 2003); Maurer (2004), arXiv:cs/0411099.

    Examples
    --------
    >>> from pacbound import mcallester
    >>> round(mcallester(0.02, 500, 30000, 0.025).value, 9)
    0.112153541
    """
    inputs = bound_inputs(emp_risk, kl, n, delta, union)
    union_, deltas, d = inputs.split_delta()
    gap = np.sqrt(_maurer_complexity(inputs, d))
    value = inputs.emp_risk + gap
    return make_result(
        "mcallester", inputs, value, gap, union_, deltas, params={"constant": "ln(2 sqrt(n)/delta)"}
    )


def kl_bound(
    emp_risk: ArrayLike,
    kl: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    *,
    xi: str = "2sqrt",
    union: Mapping[str, int] | None = None,
) -> BoundResult:
    r"""The PAC-Bayes-kl bound (Langford-Seeger-Maurer), for losses in [0, 1].

    Let :math:`\hat r`, :math:`\mathrm{KL}`, :math:`n`, :math:`\delta` represent ``emp_risk``,
    ``kl``, ``n``, ``delta``. With probability at least :math:`1-\delta`, for all :math:`Q`,

    .. math::

        \mathrm{kl}(\hat r \,\|\, R(Q)) \le c = \frac{\mathrm{KL} + \ln(\xi(n)/\delta')}{n},
        \qquad R(Q) \le \mathrm{kl}^{-1}(\hat r, c),

    evaluated with :func:`~pacbound.kl_inv_upper` (conservative, to float64). The complexity
    term is the budget :math:`c`.

    Parameters
    ----------
    emp_risk, kl, n, delta : array_like
        As in :func:`mcallester`; they broadcast together.
    xi : {"2sqrt", "exact", "n+1"}, default: "2sqrt"
        The constant :math:`\xi(n)`: Maurer's :math:`2\sqrt n`, the exact sum
        (:func:`maurer_xi`), or Seeger's :math:`n + 1`.
    union : mapping of str to int, optional
        Grids fixed in advance, e.g. ``{"sigma grid": 12}``.

    Returns
    -------
    BoundResult
        ``params`` holds ``xi`` and its value.

    References
    ----------
    Langford & Seeger (2001); Seeger (2002); Maurer (2004), arXiv:cs/0411099.

    Examples
    --------
    >>> from pacbound import kl_bound
    >>> round(kl_bound(0.02, 500, 30000, 0.025).value, 9)
    0.057310909
    """
    check_choice(xi, "xi", XI_CHOICES)
    inputs = bound_inputs(emp_risk, kl, n, delta, union)
    union_, deltas, d = inputs.split_delta()
    xi_value = np.asarray(maurer_xi(inputs.n, kind=xi), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        budget = (inputs.kl + np.log(xi_value / d)) / inputs.n
    value = kl_inv_upper(inputs.emp_risk, budget)
    return make_result(
        "kl", inputs, value, budget, union_, deltas, params={"xi": xi, "xi_value": xi_value}
    )


def thiemann(
    emp_risk: ArrayLike,
    kl: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    *,
    lam: ArrayLike,
    union: Mapping[str, int] | None = None,
) -> BoundResult:
    r"""Thiemann et al.'s bound :math:`f_\lambda` at a given :math:`\lambda \in (0, 2)`.

    Let :math:`\hat r`, :math:`\mathrm{KL}`, :math:`n`, :math:`\delta`, :math:`\lambda` represent
    ``emp_risk``, ``kl``, ``n``, ``delta``, ``lam``, and
    :math:`A = (\mathrm{KL} + \ln(2\sqrt n/\delta'))/(2n)` (the complexity term). With
    probability at least :math:`1-\delta`, for all :math:`Q` and all :math:`\lambda \in (0,2)`
    simultaneously (it relaxes the kl bound, so choosing :math:`\lambda` after seeing the data
    costs nothing),

    .. math::

        R(Q) \le \frac{\hat r}{1 - \lambda/2} + \frac{2A}{\lambda(1 - \lambda/2)}.

    Its minimum over :math:`\lambda` is :func:`f_quad`.

    Parameters
    ----------
    emp_risk, kl, n, delta : array_like
        As in :func:`mcallester`.
    lam : array_like
        :math:`\lambda` in the open interval (0, 2); broadcasts with the other inputs.
    union : mapping of str to int, optional
        Grids fixed in advance.

    Returns
    -------
    BoundResult

    References
    ----------
    Thiemann, Igel, Wintenberger & Seldin (2017), arXiv:1608.05610; Pérez-Ortiz et al. (2021),
    JMLR 22.

    Examples
    --------
    >>> from pacbound import thiemann
    >>> round(thiemann(0.02, 500, 30000, 0.025, lam=1.0).value, 9)
    0.0739691
    """
    lam_arr = check_in_interval(lam, "lam", 0.0, 2.0, closed="neither")
    inputs = bound_inputs(emp_risk, kl, n, delta, union)
    union_, deltas, d = inputs.split_delta()
    a = _maurer_complexity(inputs, d)
    shrink = 1.0 - lam_arr / 2.0
    value = inputs.emp_risk / shrink + 2.0 * a / (lam_arr * shrink)
    return make_result("thiemann", inputs, value, a, union_, deltas, params={"lam": lam_arr})


def f_quad(
    emp_risk: ArrayLike,
    kl: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    *,
    union: Mapping[str, int] | None = None,
) -> BoundResult:
    r"""The f_quad bound: Thiemann's :math:`f_\lambda` at its optimal :math:`\lambda^*`.

    Let :math:`\hat r` and :math:`A = (\mathrm{KL} + \ln(2\sqrt n/\delta'))/(2n)` (the
    complexity term). Then

    .. math::

        R(Q) \le \left(\sqrt{\hat r + A} + \sqrt{A}\right)^2, \qquad
        \lambda^* = \frac{2}{\sqrt{\hat r/A + 1} + 1},

    and :math:`f_{\lambda^*} = f_{\mathrm{quad}}` exactly. No union bound is needed for the
    choice of :math:`\lambda` (see :func:`thiemann`).

    Parameters
    ----------
    emp_risk, kl, n, delta : array_like
        As in :func:`mcallester`.
    union : mapping of str to int, optional
        Grids fixed in advance.

    Returns
    -------
    BoundResult
        ``params["lambda_star"]`` holds :math:`\lambda^*`.

    References
    ----------
    Pérez-Ortiz, Rivasplata, Shawe-Taylor & Szepesvári (2021), JMLR 22, arXiv:2007.12911.

    Examples
    --------
    >>> from pacbound import f_quad
    >>> round(f_quad(0.02, 500, 30000, 0.025).value, 9)
    0.068094949
    """
    inputs = bound_inputs(emp_risk, kl, n, delta, union)
    union_, deltas, d = inputs.split_delta()
    a = _maurer_complexity(inputs, d)
    value = (np.sqrt(inputs.emp_risk + a) + np.sqrt(a)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_star = 2.0 / (np.sqrt(inputs.emp_risk / a + 1.0) + 1.0)
    return make_result("f_quad", inputs, value, a, union_, deltas, params={"lambda_star": lam_star})
