"""100-digit reference for the binary kl and its inverses (mpmath), used by the tests.

``mp_kl_inv`` polishes a float64 guess by Newton steps on the log-odds at 100 digits and then
*certifies* the root by a sign change of kl(q||.) - c across a bracket of relative width 1e-60,
so it never trusts the guess (falling back to a 400-step bisection if the certificate fails).
"""

from __future__ import annotations

import mpmath as mp

DPS = 100


def mp_kl(q: mp.mpf | float, p: mp.mpf | float) -> mp.mpf:
    """kl(q || p) with 0 ln 0 = 0; inf off the support. Call inside ``mp.workdps``."""
    q, p = mp.mpf(q), mp.mpf(p)
    total = mp.mpf(0)
    if q > 0:
        if p == 0:
            return mp.inf
        total += q * mp.log(q / p)
    if q < 1:
        if p == 1:
            return mp.inf
        # (1 - q) ln((1 - q)/(1 - p)) through log1p: exact even when p is 1e-300
        total += (1 - q) * (mp.log1p(-q) - mp.log1p(-p))
    return total


def mp_kl_float(q: float, p: float) -> mp.mpf:
    """kl(q || p) at DPS digits for float64 inputs."""
    with mp.workdps(DPS):
        return mp_kl(q, p)


def mp_kl_inv(q: float, c: float, *, upper: bool, guess: float | None = None) -> mp.mpf:
    """sup (upper) or inf (lower) of {p : kl(q||p) <= c}, to about 90 digits."""
    with mp.workdps(DPS):
        q_, c_ = mp.mpf(q), mp.mpf(c)
        edge = mp.mpf(1) if upper else mp.mpf(0)
        if mp_kl(q_, edge) <= c_:
            return edge
        if c_ == 0:
            return q_
        root = _newton(q_, c_, guess) if guess is not None else None
        if root is not None and _certified(q_, c_, root, upper):
            return root
        return _bisect(q_, c_, upper)


def _newton(q: mp.mpf, c: mp.mpf, guess: float) -> mp.mpf | None:
    # a float64 guess of exactly 0 or 1 stands for an underflowed or saturated root
    p = min(max(mp.mpf(guess), mp.mpf(10) ** -300), 1 - mp.mpf(2) ** -53)
    if p == q:
        return None
    t = mp.log(p / (1 - p))
    for _ in range(40):
        p = 1 / (1 + mp.exp(-t))
        f = mp_kl(q, p) - c
        slope = p - q  # d kl / d t
        if slope == 0:
            return None
        step = f / slope
        t -= step
        if abs(step) < mp.mpf(10) ** (-(DPS - 10)) * (1 + abs(t)):
            break
    return 1 / (1 + mp.exp(-t))


def _certified(q: mp.mpf, c: mp.mpf, root: mp.mpf, upper: bool) -> bool:
    width = mp.mpf(10) ** -60 * max(min(root, 1 - root), mp.mpf(10) ** -300)
    inner, outer = (root - width, root + width) if upper else (root + width, root - width)
    if not (0 < outer < 1 and 0 < inner < 1):
        return False
    return mp_kl(q, inner) < c < mp_kl(q, outer)


def _bisect(q: mp.mpf, c: mp.mpf, upper: bool) -> mp.mpf:
    lo, hi = (q, mp.mpf(1)) if upper else (mp.mpf(0), q)
    # on the log-odds first, so that values such as 1e-200 are bracketed in relative terms
    t_lo = mp.log(lo / (1 - lo)) if lo > 0 else mp.mpf(-5000)
    t_hi = mp.log(hi / (1 - hi)) if hi < 1 else mp.mpf(5000)
    for _ in range(100):
        t_mid = (t_lo + t_hi) / 2
        inside = mp_kl(q, 1 / (1 + mp.exp(-t_mid))) <= c
        if upper:
            t_lo, t_hi = (t_mid, t_hi) if inside else (t_lo, t_mid)
        else:
            t_lo, t_hi = (t_lo, t_mid) if inside else (t_mid, t_hi)
    lo, hi = 1 / (1 + mp.exp(-t_lo)), 1 / (1 + mp.exp(-t_hi))
    for _ in range(300):
        mid = (lo + hi) / 2
        inside = mp_kl(q, mid) <= c
        if upper:
            lo, hi = (mid, hi) if inside else (lo, mid)
        else:
            lo, hi = (lo, mid) if inside else (mid, hi)
    return hi if upper else lo
