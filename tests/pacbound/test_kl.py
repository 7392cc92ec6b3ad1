"""Tests of pacbound._kl: kl_bernoulli (its inverses are tested in test_kl_inverse.py).

Ground truth: 100-digit mpmath (tests/pacbound/_mpref.py).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from pacbound import kl_bernoulli
from pacbound.exceptions import InvalidParameterError, TradeoffError
from tests.pacbound._mpref import DPS, mp_kl, mp_kl_float


def test_kl_bernoulli_edges() -> None:
    assert float(kl_bernoulli(0.0, 0.3)) == pytest.approx(-math.log1p(-0.3), rel=1e-15)
    assert float(kl_bernoulli(1.0, 0.3)) == pytest.approx(-math.log(0.3), rel=1e-15)
    assert float(kl_bernoulli(0.4, 0.4)) == 0.0
    assert float(kl_bernoulli(0.0, 0.0)) == 0.0 and float(kl_bernoulli(1.0, 1.0)) == 0.0
    assert float(kl_bernoulli(0.3, 0.0)) == math.inf and float(kl_bernoulli(0.3, 1.0)) == math.inf
    assert float(kl_bernoulli(0.0, 1.0)) == math.inf and float(kl_bernoulli(1.0, 0.0)) == math.inf


def test_kl_bernoulli_matches_mpmath() -> None:
    rng = np.random.default_rng(7)
    q = np.concatenate([rng.uniform(0, 1, 60), 10 ** rng.uniform(-300, 0, 30)])
    p = np.concatenate([rng.uniform(0, 1, 60), 10 ** rng.uniform(-300, 0, 30)])
    p[::7] = q[::7] * (1 + 1e-9)  # nearly equal: kl ~ 1e-18, no cancellation loss allowed
    got = kl_bernoulli(q, p)
    for qi, pi, gi in zip(q, p, got, strict=True):
        truth = mp_kl_float(float(qi), float(pi))
        assert abs(mp.mpf(float(gi)) - truth) <= 1e-14 * truth + 1e-300, (qi, pi)


def test_kl_bernoulli_reference_point() -> None:
    with mp.workdps(DPS):
        truth = mp_kl(mp.mpf("0.1"), mp.mpf("0.2"))
    assert float(kl_bernoulli(0.1, 0.2)) == pytest.approx(float(truth), rel=1e-14)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: kl_bernoulli(0.1, 1.2), r"^`p` must be in \[0, 1\]; got 1\.2\.$"),
        (lambda: kl_bernoulli(-1, 0.5), r"^`q` must be in \[0, 1\]; got -1\.0\.$"),
    ],
)
def test_error_messages(call, message) -> None:
    with pytest.raises(InvalidParameterError, match=message) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, TradeoffError)
