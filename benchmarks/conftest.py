"""Shared inputs and baselines of the kl-inverse benchmarks (``bench_kl_inv.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

N_PAIRS = 1_000_000
BRENTQ_SAMPLE = 2_000


@pytest.fixture(scope="session")
def qc_pairs() -> tuple[np.ndarray, np.ndarray]:
    """10^6 (q, c) pairs: q uniform in (0, 1), c log-uniform in [1e-6, 1] (seeded)."""
    rng = np.random.default_rng(20260101)
    q = rng.uniform(0.0, 1.0, N_PAIRS)
    c = 10.0 ** rng.uniform(-6.0, 0.0, N_PAIRS)
    return q, c


def _kl_scalar(q: float, p: float) -> float:
    """kl(q||p) on Python floats (the brentq baseline's objective)."""
    out = 0.0
    if q > 0.0:
        out += q * math.log(q / p)
    if q < 1.0:
        out += (1.0 - q) * (math.log1p(-q) - math.log1p(-p))
    return out


def brentq_kl_inv_upper(q: float, c: float) -> float:
    """The usual scalar kl-inverse: scipy's brentq on [q, 1 - 2^-53] at full precision."""
    from scipy.optimize import brentq

    hi = 1.0 - 2.0**-53
    if c <= 0.0:
        return q
    if _kl_scalar(q, hi) <= c:
        return 1.0
    return brentq(lambda p: _kl_scalar(q, p) - c, q, hi, xtol=1e-300, rtol=4 * 2.0**-52)
