"""The binary kl divergence and its two inverses: float64, vectorised, always conservative.

Let :math:`q` and :math:`p` be Bernoulli means and :math:`c \\ge 0` a budget. This module
computes

.. math::

    \\mathrm{kl}(q \\,\\|\\, p) = q \\ln\\frac{q}{p} + (1-q)\\ln\\frac{1-q}{1-p},

    \\mathrm{kl}^{-1}_{\\sup}(q, c) = \\sup\\{p \\in [q, 1] : \\mathrm{kl}(q\\|p) \\le c\\},
    \\qquad
    \\mathrm{kl}^{-1}_{\\inf}(q, c) = \\inf\\{p \\in [0, q] : \\mathrm{kl}(q\\|p) \\le c\\}.

Algorithm of the inverses (vectorised, no Python loop over elements)
-------------------------------------------------------------------
Both inverses are the upper inverse of :math:`a` in "a-world" coordinates
(:math:`a = q` for the sup; :math:`a = 1-q`, :math:`x = 1-p` for the inf, by the symmetry
:math:`\\mathrm{kl}(q\\|p) = \\mathrm{kl}(1-q\\|1-p)`), with :math:`x` and :math:`1-x` both carried
to full relative precision.

1. *Start*: the smaller of two closed-form upper bounds on the root,
   :math:`a + c\\bar a + \\sqrt{c\\bar a(c\\bar a + 2a)}` (from
   :math:`\\mathrm{kl}(a\\|x) \\ge (x-a)^2 / (2x\\bar a)`, tight as :math:`c \\to 0`) and
   :math:`1 - e^{-(c + H(a))/\\bar a}` (from dropping :math:`a\\ln(1/x) \\ge 0`, tight as
   :math:`x \\to 1` or :math:`a \\to 0`), where :math:`\\bar a = 1 - a` and :math:`H` is the
   binary entropy. Its error is at most about 45% in the log-odds displacement.
2. *One Householder step of order 3 (quartic convergence), then one Halley step*, on
   :math:`F(s) = \\mathrm{kl}(a\\|x(s)) - c` in the log-odds displacement :math:`s`, where
   :math:`F' = x - a`, :math:`F'' = x(1-x)` and :math:`F''' = x(1-x)(1-2x)` are free. The
   residual uses the cancellation-free form
   :math:`\\bar a\\,\\mathrm{log1p}(d/\\bar x) - a\\,\\mathrm{log1p}(d/a)` with :math:`d = x - a`
   tracked separately (no cancellation beyond the one inherent to kl); where the residual
   is below its own rounding error (c below about 1e-32) the step is skipped, since the start
   is then exact to O(c). This leaves a relative error below about 1e-9.
3. *Conservative rounding step*: kl is convex in :math:`p`, so the tangent at any point
   :math:`\\hat p` crosses the level :math:`c` beyond the root; with the residual shifted by a
   bound on its rounding error, :math:`\\hat p - (r - E)/g` is a rigorous bound on the root
   (above it for the sup, below it for the inf). It is rounded outward once more.

So every result lies on the conservative side of the exact inverse. The price of that
certificate is the rounding-error bound E, taken as 2^-48 (32 unit roundoffs) times the size
of the residual's terms, which holds even for a 4-ulp vector ``log``: results are within about
1e-14 relative (tens of ulp) and 2.2e-15 absolute of the exact value; a tiny lower inverse
(say 1e-200 at c = 500) within about u |ln p| relative, which is its conditioning. About ten
transcendental calls per element in all, in blocks of 16384 elements that stay in cache.

The ``log1p`` calls use the classic ``log(u) - ((u - 1) - z)/u`` correction with ``u = 1 + z``
(Goldberg 1991), which is as accurate as ``log1p`` and runs at the speed of ``log``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pacbound.exceptions import InvalidParameterError

__all__ = ["kl_bernoulli", "kl_inv_lower", "kl_inv_upper"]

_U = 2.0**-53  # unit roundoff
_ONE_BELOW = 1.0 - _U  # largest double below 1
_TINY = float(np.finfo(np.float64).tiny)  # smallest normal double
_FLOOR = 1e-300  # floor of 1 - x in the iteration (keeps every ratio finite)
_LOWER_Q_MIN = 1e-280  # below this q the lower inverse is returned as 0 (far above _FLOOR)
_ERR = 2.0**-48  # bound on the residual's rounding error, relative to |t1| + |t2| + |r| (see notes)
_RESIDUAL_NOISE = 2.0**-49  # relative size of the iteration's residual rounding error
_STEP_SLACK = 2.0**-49  # relative slack on the tangent step (rounding of g and the division)
_UP = 1.0 + 2.0**-51  # multiplying a positive double by this rounds it up past its exact value
_DOWN = 1.0 - 2.0**-51
_CHUNK = 16384  # elements per block: keeps the working set in cache


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _as_array(value: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"`{name}` must be a real number or an array of real numbers; got {value!r}."
        ) from exc


def _check_probability(arr: NDArray[np.float64], name: str) -> None:
    bad = (arr < 0.0) | (arr > 1.0)  # NaN passes (NaN in gives NaN out)
    if bad.any():
        raise InvalidParameterError(f"`{name}` must be in [0, 1]; got {float(arr[bad].flat[0])!r}.")


def _check_budget(arr: NDArray[np.float64], name: str) -> None:
    bad = arr < 0.0
    if bad.any():
        raise InvalidParameterError(
            f"`{name}` must be in [0, inf]; got {float(arr[bad].flat[0])!r}."
        )


def _finish_shape(out: NDArray[np.float64], scalar: bool) -> NDArray[np.float64] | np.float64:
    return out[()] if scalar else out


# --------------------------------------------------------------------------------------------
# kl
# --------------------------------------------------------------------------------------------


def _log1p(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log1p`` for ``z > -1`` at the cost of one ``log`` (Goldberg's correction)."""
    u = 1.0 + z
    corr = u - 1.0
    corr -= z
    corr /= u
    out = np.log(u)
    out -= corr
    return out


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
    q_arr = _as_array(q, "q")
    p_arr = _as_array(p, "p")
    _check_probability(q_arr, "q")
    _check_probability(p_arr, "p")
    scalar = q_arr.ndim == 0 and p_arr.ndim == 0
    shape = np.broadcast_shapes(q_arr.shape, p_arr.shape)
    qf = np.ascontiguousarray(np.broadcast_to(q_arr, shape)).reshape(-1)
    pf = np.ascontiguousarray(np.broadcast_to(p_arr, shape)).reshape(-1)
    out = np.empty(qf.shape, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for start in range(0, qf.size, _CHUNK):
            stop = min(start + _CHUNK, qf.size)
            out[start:stop] = _kl_block(qf[start:stop], pf[start:stop])
    return _finish_shape(out.reshape(shape), scalar)


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
    log_pq = _log1p(z)
    log_pq *= sign
    np.divide(ad, high_c, out=z)
    log_pcqc = _log1p(z)
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
    edge = np.minimum(low, high_c) < _TINY
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


# --------------------------------------------------------------------------------------------
# inverses
# --------------------------------------------------------------------------------------------


def kl_inv_upper(q: ArrayLike, c: ArrayLike) -> NDArray[np.float64] | np.float64:
    r"""Upper inverse of the binary kl: the largest :math:`p` with :math:`\mathrm{kl}(q\|p) \le c`.

    Let :math:`q` and :math:`c` represent ``q`` and ``c``. Returns

    .. math::

        \mathrm{kl}^{-1}(q, c) = \sup\{p \in [q, 1] : \mathrm{kl}(q\|p) \le c\},

    rounded up: the result is never below the exact value and within about 1e-14 relative
    (2.2e-15 absolute) of it; see the module notes for the algorithm. Closed forms:
    :math:`q = 0` gives :math:`1 - e^{-c}`, :math:`q = 1` or :math:`c = \infty` gives 1,
    :math:`c = 0` gives :math:`q`. The result is
    1 only when :math:`\mathrm{kl}(q\|1^-) \le c` cannot be ruled out, where :math:`1^-` is the
    largest double below 1.

    Parameters
    ----------
    q : array_like
        Empirical risk in [0, 1].
    c : array_like
        Budget in [0, inf]. Broadcasts against ``q``. NaN in either gives NaN.

    Returns
    -------
    ndarray or numpy.float64
        The upper inverse, a float when both inputs are scalars.

    Raises
    ------
    InvalidParameterError
        If ``q`` lies outside [0, 1] or ``c`` is negative.

    References
    ----------
    Langford & Seeger (2001); Seeger (2002); Maurer (2004), arXiv:cs/0411099.

    Examples
    --------
    >>> from pacbound import kl_inv_upper
    >>> round(float(kl_inv_upper(0.1, 0.05)), 12)
    0.220078601107
    """
    return _kl_inv(q, c, lower=False)


def kl_inv_lower(q: ArrayLike, c: ArrayLike) -> NDArray[np.float64] | np.float64:
    r"""Lower inverse of the binary kl: the smallest :math:`p` with :math:`\mathrm{kl}(q\|p) \le c`.

    Let :math:`q` and :math:`c` represent ``q`` and ``c``. Returns

    .. math::

        \mathrm{kl}^{-1}_{\inf}(q, c) = \inf\{p \in [0, q] : \mathrm{kl}(q\|p) \le c\},

    rounded down: never above the exact value and within 2.2e-15 of it (about 1e-14
    relative, or u |ln p| for tiny values). Closed forms:
    :math:`q = 1` gives :math:`e^{-c}`, :math:`q = 0` or :math:`c = \infty` gives 0,
    :math:`c = 0` gives :math:`q`. An exact value below about 1e-300 returns 0, and so does
    any :math:`q < 10^{-280}` (conservative, and within 1e-280 of the exact value).

    Parameters
    ----------
    q : array_like
        Empirical risk in [0, 1].
    c : array_like
        Budget in [0, inf]. Broadcasts against ``q``. NaN in either gives NaN.

    Returns
    -------
    ndarray or numpy.float64
        The lower inverse, a float when both inputs are scalars.

    Raises
    ------
    InvalidParameterError
        If ``q`` lies outside [0, 1] or ``c`` is negative.

    Examples
    --------
    >>> from pacbound import kl_inv_lower
    >>> round(float(kl_inv_lower(0.1, 0.05)), 12)
    0.031278396272
    """
    return _kl_inv(q, c, lower=True)


def _kl_inv(q: ArrayLike, c: ArrayLike, *, lower: bool) -> NDArray[np.float64] | np.float64:
    q_arr = _as_array(q, "q")
    c_arr = _as_array(c, "c")
    _check_probability(q_arr, "q")
    _check_budget(c_arr, "c")
    scalar = q_arr.ndim == 0 and c_arr.ndim == 0
    shape = np.broadcast_shapes(q_arr.shape, c_arr.shape)
    qf = np.ascontiguousarray(np.broadcast_to(q_arr, shape)).reshape(-1)
    cf = np.ascontiguousarray(np.broadcast_to(c_arr, shape)).reshape(-1)
    out = np.empty(qf.shape, dtype=np.float64)
    # Interior: 2.2e-308 <= q < 1 - 2^-53 ... handled by the iteration; the rest in closed form.
    q_min = _LOWER_Q_MIN if lower else _TINY
    interior = (qf >= q_min) & (qf < _ONE_BELOW) & (cf > 0.0) & (cf < math.inf)
    if interior.all():
        _inverse_interior(qf, cf, out, lower=lower)
    else:
        idx = np.flatnonzero(interior)
        if idx.size:
            sub = np.empty(idx.size, dtype=np.float64)
            _inverse_interior(qf[idx], cf[idx], sub, lower=lower)
            out[idx] = sub
        rest = np.flatnonzero(~interior)
        out[rest] = _inverse_edges(qf[rest], cf[rest], lower=lower)
    return _finish_shape(out.reshape(shape), scalar)


def _nudge(x: NDArray[np.float64], toward: float) -> NDArray[np.float64]:
    """Two ulp toward ``toward`` (kept in [0, 1]): covers a libm result off by up to 2 ulp."""
    return np.clip(np.nextafter(np.nextafter(x, toward), toward), 0.0, 1.0)


def _inverse_edges(
    q: NDArray[np.float64], c: NDArray[np.float64], *, lower: bool
) -> NDArray[np.float64]:
    """Closed forms: q in {0, 1}, c in {0, inf}, q subnormal or the last double below 1."""
    out = np.full(q.shape, np.nan)
    c_pos = c > 0.0
    with np.errstate(over="ignore"):
        if lower:
            out[q == 1.0] = _nudge(np.exp(-c[q == 1.0]), -1.0)  # e^-c, rounded down
            # q = 0, and q below 1e-280 (the exact inf is below q: 0 is within 1e-280)
            out[(q < _LOWER_Q_MIN) | (c == math.inf)] = 0.0
            mid = (q >= _LOWER_Q_MIN) & (q < 1.0) & c_pos & (c < math.inf)
            if mid.any():  # q is the last double below 1: no 1 - q subnormal issue
                sub = np.empty(int(mid.sum()))
                _inverse_interior(q[mid], c[mid], sub, lower=True)
                out[mid] = sub
        else:
            out[q == 0.0] = _nudge(-np.expm1(-c[q == 0.0]), 2.0)  # 1 - e^-c, rounded up
            out[(q >= _ONE_BELOW) | (c == math.inf)] = 1.0  # only 1 is >= an inverse above q
            tiny = (q > 0.0) & (q < _TINY) & c_pos & (c < math.inf)
            if tiny.any():  # sup is increasing in q: the inverse at the smallest normal bounds it
                sub = np.empty(int(tiny.sum()))
                _inverse_interior(np.full(sub.shape, _TINY), c[tiny], sub, lower=False)
                out[tiny] = sub
        zero = c == 0.0
        out[zero] = q[zero]
        out[np.isnan(q) | np.isnan(c)] = np.nan
    return out


def _inverse_interior(
    q: NDArray[np.float64], c: NDArray[np.float64], out: NDArray[np.float64], *, lower: bool
) -> None:
    """Inverses for ``2.2e-308 <= q < 1 - 2^-53`` and ``0 < c < inf``, block by block."""
    n = q.size
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            qs, cs = q[start:stop], c[start:stop]
            if lower:  # a = 1 - q may be rounded; its log comes from q itself
                a, ac = 1.0 - qs, qs
                log_a = _log1p(-qs)
            else:
                a, ac = qs, 1.0 - qs
                log_a = np.log(qs)
            x, xc, d = _start(a, ac, log_a, cs)
            _newton_type_step(a, ac, cs, x, xc, d, order=3)
            _newton_type_step(a, ac, cs, x, xc, d, order=2)
            out[start:stop] = _conservative_step(a, ac, cs, x, xc, lower=lower)


def _start(
    a: NDArray[np.float64],
    ac: NDArray[np.float64],
    log_a: NDArray[np.float64],
    c: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The smaller of two closed-form upper bounds on the root, as (x, 1 - x, x - a).

    Bound 1 solves (x - a)^2 = 2 c x (1 - a), from kl(a||x) >= (x - a)^2 / (2 x (1 - a)).
    Bound 2 is 1 - x >= (1 - a) exp(-w) with w = (c - a ln a) / (1 - a), from
    kl(a||x) >= (1 - a) ln((1 - a) / (1 - x)) + a ln a; its x - a = (1 - a)(-expm1(-w)) is
    taken to start accuracy, inside [w - w^2/2, w].
    """
    cac = c * ac
    d1 = a + a
    d1 += cac
    np.sqrt(d1, out=d1)
    d1 *= np.sqrt(c)
    d1 *= np.sqrt(ac)  # sqrt(cac (cac + 2a)) as a product of roots: no underflow
    d1 += cac
    w = log_a
    w *= a
    np.subtract(c, w, out=w)
    w /= ac
    e = np.negative(w)
    np.exp(e, out=e)
    xc = ac * e
    np.subtract(1.0, e, out=e)
    t = w * w
    t *= -0.5
    t += w
    np.maximum(e, t, out=e)
    np.minimum(e, w, out=e)
    e *= ac
    d = np.minimum(d1, e, out=e)
    x = a + d
    np.subtract(ac, d1, out=d1)
    np.maximum(xc, d1, out=xc)
    np.maximum(xc, _FLOOR, out=xc)
    return x, xc, d


def _newton_type_step(
    a: NDArray[np.float64],
    ac: NDArray[np.float64],
    c: NDArray[np.float64],
    x: NDArray[np.float64],
    xc: NDArray[np.float64],
    d: NDArray[np.float64],
    *,
    order: int,
) -> None:
    """One Halley (order 2) or Householder (order 3) step, updating x, 1 - x and d in place.

    The variable is the log-odds displacement s, x = a e^s / (1 - a + a e^s), for which
    F(s) = kl(a||x) - c has F' = x - a = d, F'' = x (1 - x) and F''' = x (1 - x)(1 - 2x).
    The step is the Newton step F / F' times a correction factor kept within [1/4, 2], and
    no step is taken where |F| is below its own rounding error. d is carried through the
    update, never recomputed as a difference.
    """
    np.maximum(d, _TINY, out=d)
    z = d / xc
    r = _log1p(z)
    r *= ac
    np.divide(d, a, out=z)
    t = _log1p(z)
    t *= a
    noise = r + t
    noise *= _RESIDUAL_NOISE  # rounding error of F: below it, F carries no information
    r -= t
    r -= c  # F
    resolved = np.abs(r) > noise
    r /= d  # F / F'
    r *= resolved  # unresolved (c below ~1e-32): the start, exact to O(c), is kept
    h = x * xc  # F''
    ab = np.divide(h, d, out=z)
    ab *= r  # (F / F')(F'' / F')
    if order == 3:
        np.subtract(xc, x, out=t)
        t *= ab
        t *= r
        t *= 1.0 / 6.0  # (F / F')^2 F''' / (6 F')
        t -= ab
        t += 1.0
        ab *= -0.5
        ab += 1.0
        ab /= t
    else:
        ab *= -0.5
        ab += 1.0
        np.divide(1.0, ab, out=ab)
    np.maximum(ab, 0.25, out=ab)
    np.minimum(ab, 2.0, out=ab)
    r *= ab
    np.negative(r, out=r)
    np.maximum(r, -700.0, out=r)
    np.minimum(r, 700.0, out=r)
    taylor = r * (1.0 / 6.0)  # e^s - 1 for |s| < 1e-5 (Taylor, relative error < 1e-16) ...
    taylor += 0.5
    taylor *= r
    taylor += 1.0
    taylor *= r
    tiny_step = np.abs(r) < 1e-5
    e = np.exp(r, out=r)
    em1 = np.where(tiny_step, taylor, e - 1.0)  # ... else e^s - 1 (absolute error 1 ulp)
    den = x * e
    den += xc
    x *= e
    x /= den
    em1 *= h
    em1 /= den
    d += em1  # carried to full relative precision even when d << ulp(a)
    xc /= den
    np.maximum(xc, _FLOOR, out=xc)


def _conservative_step(
    a: NDArray[np.float64],
    ac: NDArray[np.float64],
    c: NDArray[np.float64],
    x: NDArray[np.float64],
    xc: NDArray[np.float64],
    *,
    lower: bool,
) -> NDArray[np.float64]:
    """The tangent bound at the candidate, widened by its rounding error, rounded outward.

    kl(a||x) is convex in x, so for any x in (a, 1) the root satisfies
    ``x* <= x + (c - kl(a||x)) / g`` with ``g = (x - a) / (x (1 - x))``. The computed
    residual r is off by at most ``_ERR * (t1 + t2 + |r|)``, which is added before dividing.
    For the lower inverse the candidate is 1 - x (carried exactly in ``xc``) and the bound is
    applied to it downwards.
    """
    if lower:  # answer p = 1 - x; q = ac; q * (1 - 2^-53) is the double just below q
        hi = ac * _ONE_BELOW
        p = np.maximum(xc, _FLOOR)
        np.minimum(p, hi, out=p)
        xc_f = p
        x_f = 1.0 - p
        d = ac - p
    else:  # answer p = x; q = a; a + a * 1.5 u is the double just above q
        lo = a * (1.5 * _U)
        lo += a
        p = np.maximum(x, lo)
        np.minimum(p, _ONE_BELOW, out=p)
        x_f = p
        xc_f = 1.0 - p
        d = p - a
    z = d / xc_f
    t1 = _log1p(z)
    t1 *= ac
    np.divide(d, a, out=z)
    t2 = _log1p(z)
    t2 *= a
    r = t1 - t2
    r -= c
    t1 += t2
    t1 += np.abs(r, out=t2)
    t1 *= _ERR
    t1 -= r  # E - r, where the true residual is >= r - E
    g = np.multiply(x_f, xc_f, out=z)
    np.divide(d, g, out=g)
    step = t1
    step /= g
    step += np.abs(step, out=g) * _STEP_SLACK  # rigorous bound on x* - x
    if lower:
        res = np.subtract(xc_f, step, out=step)
        res *= _DOWN
        np.maximum(res, 0.0, out=res)
        np.minimum(res, hi, out=res)
    else:
        res = np.add(x_f, step, out=step)
        res *= _UP
        np.maximum(res, lo, out=res)
        np.minimum(res, 1.0, out=res)
    return res
