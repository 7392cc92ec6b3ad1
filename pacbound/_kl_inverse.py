"""The two inverses of the binary kl: float64, vectorised, always conservative.

Let :math:`q` be a Bernoulli mean and :math:`c \\ge 0` a budget (the binary kl is
:func:`~pacbound.kl_bernoulli`). This module computes

.. math::

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
(say 1.2e-200 at q = 0.9, c = 414) within about 2^-48 |ln p| relative (1.6e-12 there: the
allowance E on a residual whose terms are about |ln p|). About ten transcendental calls per
element in all.

Two implementations
-------------------
The interior (everything but the closed forms) runs in one of two implementations of the same
algorithm (:mod:`pacbound._kl_inverse_backend`; :func:`pacbound.kl_inverse_backend` says which):

* the compiled kernel ``pacbound/_kl_inverse_kernel.c``, built with the package where a C
  compiler is present: one fused loop per stage over blocks of 256 elements in L1, vectorised
  (AVX2 + FMA chosen at load time, SSE2 otherwise), with its own branch-free fdlibm ``log``,
  ``log1p`` and ``exp`` (< 1 ulp; measured in the tests), split over the available CPUs for
  large inputs. About 4-5x the numpy passes on one thread (33-41 vs 143-210 ns per element
  on a shared 2-core AMD EPYC); it also checks the interior domain as it goes, so the common
  all-interior call skips the range checks and masks.
* numpy array passes in blocks of 16384 elements that stay in cache (the code below), used
  when the kernel is not built. Its ``log1p`` calls use the classic
  ``log(u) - ((u - 1) - z)/u`` correction with ``u = 1 + z`` (Goldberg 1991;
  :func:`pacbound._kl.log1p_fast`), as accurate as ``log1p`` at the speed of ``log``.

Both round each operation alike up to their ``log``; results differ by a few ulp and both are
rigorous, since the final step's allowance E covers a 4-ulp ``log``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pacbound._kl import CHUNK, TINY, check_flat_ranges, flat_inputs, log1p_fast, shaped
from pacbound._kl_inverse_backend import compiled_interior, compiled_kernel

__all__ = ["kl_inv_lower", "kl_inv_upper"]

_U = 2.0**-53  # unit roundoff
_ONE_BELOW = 1.0 - _U  # largest double below 1
_FLOOR = 1e-300  # floor of 1 - x in the iteration (keeps every ratio finite)
_LOWER_Q_MIN = 1e-280  # below this q the lower inverse is returned as 0 (far above _FLOOR)
_ERR = 2.0**-48  # bound on the residual's rounding error, relative to |t1| + |t2| + |r| (see notes)
_RESIDUAL_NOISE = 2.0**-49  # relative size of the iteration's residual rounding error
_STEP_SLACK = 2.0**-49  # relative slack on the tangent step (rounding of g and the division)
_UP = 1.0 + 2.0**-51  # multiplying a positive double by this rounds it up past its exact value
_DOWN = 1.0 - 2.0**-51
#: Budgets at or above this are treated like c = inf. kl(q||1 - 2^-53) < 37 for every q, so the
#: exact sup lies in [1 - 2^-53, 1) and 1 is its conservative rounding; kl(q||2^-1074) < 745,
#: so the exact inf is below the smallest subnormal and 0 is conservative. (The iteration's
#: start overflows, giving NaN, for budgets near the largest double.)
_C_HUGE = 1e3


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
    relative, or 2^-48 |ln p| for tiny values). Closed forms:
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
    qf, cf, shape, scalar = flat_inputs(q, c, "c")
    out = np.empty(qf.shape, dtype=np.float64)
    kernel = compiled_kernel()
    # The kernel checks that its pairs are interior (so valid) as it goes: the common case
    # leaves nothing pending, and then needs neither the range checks nor the masks.
    if kernel is None:
        pending = [(0, qf.size)]
    else:
        pending = compiled_interior(kernel, qf, cf, out, lower=lower)
    for lo, hi in pending:  # only here can an invalid value be (written pairs were valid)
        check_flat_ranges(qf[lo:hi], cf[lo:hi], "c", math.inf)
        _inverse_masked(qf[lo:hi], cf[lo:hi], out[lo:hi], lower=lower)
    return shaped(out, shape, scalar)


def _inverse_masked(
    q: NDArray[np.float64], c: NDArray[np.float64], out: NDArray[np.float64], *, lower: bool
) -> None:
    """Inverses of checked pairs into ``out``: the interior by the iteration, the rest in
    closed form."""
    q_min = _LOWER_Q_MIN if lower else TINY
    interior = (q >= q_min) & (q < _ONE_BELOW) & (c > 0.0) & (c < _C_HUGE)
    if interior.all():
        _inverse_interior(q, c, out, lower=lower)
        return
    idx = np.flatnonzero(interior)
    if idx.size:
        sub = np.empty(idx.size, dtype=np.float64)
        _inverse_interior(q[idx], c[idx], sub, lower=lower)
        out[idx] = sub
    rest = np.flatnonzero(~interior)
    out[rest] = _inverse_edges(q[rest], c[rest], lower=lower)


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
            out[(q < _LOWER_Q_MIN) | (c >= _C_HUGE)] = 0.0
            mid = (q >= _LOWER_Q_MIN) & (q < 1.0) & c_pos & (c < _C_HUGE)
            if mid.any():  # q is the last double below 1: no 1 - q subnormal issue
                sub = np.empty(int(mid.sum()))
                _inverse_interior(q[mid], c[mid], sub, lower=True)
                out[mid] = sub
        else:
            out[q == 0.0] = _nudge(-np.expm1(-c[q == 0.0]), 2.0)  # 1 - e^-c, rounded up
            out[(q >= _ONE_BELOW) | (c >= _C_HUGE)] = 1.0  # only 1 is >= an inverse above q
            tiny = (q > 0.0) & (q < TINY) & c_pos & (c < _C_HUGE)
            if tiny.any():  # sup is increasing in q: the inverse at the smallest normal bounds it
                sub = np.empty(int(tiny.sum()))
                _inverse_interior(np.full(sub.shape, TINY), c[tiny], sub, lower=False)
                out[tiny] = sub
        zero = c == 0.0
        out[zero] = q[zero]
        out[np.isnan(q) | np.isnan(c)] = np.nan
    return out


def _inverse_interior(
    q: NDArray[np.float64], c: NDArray[np.float64], out: NDArray[np.float64], *, lower: bool
) -> None:
    """Inverses for ``2.2e-308 <= q < 1 - 2^-53`` and ``0 < c < 1e3``, into ``out``.

    By the compiled kernel where it is built (:mod:`pacbound._kl_inverse_backend`), else by
    the numpy passes below; both carry out the same algorithm.
    """
    kernel = compiled_kernel()
    pending = [(0, q.size)] if kernel is None else compiled_interior(kernel, q, c, out, lower=lower)
    for lo, hi in pending:
        _inverse_interior_numpy(q[lo:hi], c[lo:hi], out[lo:hi], lower=lower)


def _inverse_interior_numpy(
    q: NDArray[np.float64], c: NDArray[np.float64], out: NDArray[np.float64], *, lower: bool
) -> None:
    """:func:`_inverse_interior` in numpy array passes, block by block."""
    n = q.size
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            qs, cs = q[start:stop], c[start:stop]
            if lower:  # a = 1 - q may be rounded; its log comes from q itself
                a, ac = 1.0 - qs, qs
                log_a = log1p_fast(-qs)
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
    np.maximum(d, TINY, out=d)
    z = d / xc
    r = log1p_fast(z)
    r *= ac
    np.divide(d, a, out=z)
    t = log1p_fast(z)
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
    t1 = log1p_fast(z)
    t1 *= ac
    np.divide(d, a, out=z)
    t2 = log1p_fast(z)
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
