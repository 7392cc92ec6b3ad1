"""Tests of pacbound._gaussian: KL between diagonal Gaussians, direct and grouped.

The cancellation case (fine-tuned posteriors sit near a pretrained prior): 10^6 coordinates
with sigma_q / sigma_p = 1 + 1e-4 (exact KL 0.0099997 nats, 5 digits) and 1 + 1e-3 (0.99967);
naive float32 gives 0 and 1.013.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from pacbound import gaussian_kl_diagonal, gaussian_kl_grouped
from pacbound.exceptions import InvalidParameterError


def _mp_kl(mu_q, var_q, mu_p, var_p) -> mp.mpf:
    with mp.workdps(60):
        total = mp.mpf(0)
        for mq, vq, m_p, vp in zip(mu_q, var_q, mu_p, var_p, strict=True):
            mq, vq, m_p, vp = (mp.mpf(float(v)) for v in (mq, vq, m_p, vp))
            total += (mp.log(vp / vq) + (vq + (mq - m_p) ** 2) / vp - 1) / 2
        return total


@pytest.mark.parametrize(("ratio", "approx"), [(1 + 1e-4, 0.0099997), (1 + 1e-3, 0.99967)])
def test_cancellation_case(ratio: float, approx: float) -> None:
    n = 10**6
    var_q = np.full(n, ratio**2)
    with mp.workdps(60):
        v = mp.mpf(ratio**2)  # the float64 variance, exactly
        exact = float(n * (v - 1 - mp.log(v)) / 2)
    assert exact == pytest.approx(approx, rel=1e-5)
    assert gaussian_kl_diagonal(0.0, var_q, 0.0, 1.0) == pytest.approx(exact, rel=1e-12)
    assert gaussian_kl_grouped(n, 0.0, ratio**2, 1.0) == pytest.approx(exact, rel=1e-12)
    # the naive formula in float32 is off by 100% (1e-4) or 1.4% (1e-3)
    vq32, vp32 = var_q.astype(np.float32), np.ones(n, dtype=np.float32)
    naive = float(np.sum(np.log(vp32 / vq32) + vq32 / vp32 - 1, dtype=np.float32) / 2)
    assert abs(naive - exact) > 0.01 * exact


def test_tiny_log_variance_ratio_keeps_relative_precision() -> None:
    # x = 2e-8: e^x - 1 - x = 2e-16, lost entirely by expm1(x) - x
    var_q = 1.0 + 2e-8
    exact = _mp_kl([0.0], [var_q], [0.0], [1.0])
    assert gaussian_kl_diagonal(0.0, var_q, 0.0, 1.0) == pytest.approx(float(exact), rel=1e-12)


def test_diagonal_matches_mpmath_on_random_inputs() -> None:
    rng = np.random.default_rng(5)
    mu_q, mu_p = rng.normal(size=300), rng.normal(size=300)
    var_q = np.exp(rng.uniform(-3, 3, 300))
    var_p = var_q * np.exp(rng.choice([-1e-9, 1e-6, 0.1, 2.0], 300))
    got = gaussian_kl_diagonal(mu_q, var_q, mu_p, var_p)
    assert got == pytest.approx(float(_mp_kl(mu_q, var_q, mu_p, var_p)), rel=1e-13)


def test_grouped_equals_diagonal_from_sufficient_statistics() -> None:
    rng = np.random.default_rng(6)
    sizes = [5, 17, 40]
    mu_q = [rng.normal(size=s) for s in sizes]
    mu_p = [m + rng.normal(scale=1e-3, size=m.size) for m in mu_q]
    var_q, var_p = [1e-4, 2e-4, 3e-4], [1.5e-4, 2e-4, 1e-4]
    direct = sum(
        gaussian_kl_diagonal(mq, vq, m_p, vp)
        for mq, vq, m_p, vp in zip(mu_q, var_q, mu_p, var_p, strict=True)
    )
    sq = [float(np.sum((a - b) ** 2)) for a, b in zip(mu_q, mu_p, strict=True)]
    grouped = gaussian_kl_grouped(sizes, sq, var_q, var_p)
    assert grouped == pytest.approx(direct, rel=1e-13)
    parts = gaussian_kl_grouped(sizes, sq, var_q, var_p, per_group=True)
    assert parts.shape == (3,) and parts.sum() == pytest.approx(grouped, rel=1e-15)
    # equal variances everywhere: |delta|^2 / (2 sigma^2)
    assert gaussian_kl_grouped(sizes, sq, 1e-4, 1e-4) == pytest.approx(sum(sq) / 2e-4, rel=1e-15)


def test_broadcasting_and_float32_inputs() -> None:
    mu = np.zeros((4, 3), dtype=np.float32)
    assert gaussian_kl_diagonal(mu, 1.0, mu, 1.0) == 0.0
    kl = gaussian_kl_diagonal(np.ones((4, 3), dtype=np.float32), 1.0, 0.0, np.float32(2.0))
    assert kl == pytest.approx(12 * 0.5 * (math.log(2) + 0.5 + 0.5 - 1), rel=1e-14)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: gaussian_kl_diagonal(0.0, 0.0, 0.0, 1.0),
            r"^`var_q` must be in \(0, inf\); got 0\.0\.$",
        ),
        (
            lambda: gaussian_kl_diagonal(0.0, 1.0, 0.0, -1.0),
            r"^`var_p` must be in \(0, inf\); got -1\.0\.$",
        ),
        (
            lambda: gaussian_kl_diagonal(np.nan, 1.0, 0.0, 1.0),
            r"^`mu_q` must not be NaN; got nan\.$",
        ),
        (
            lambda: gaussian_kl_diagonal(0.0, 1.0, np.inf, 1.0),
            r"^`mu_p` must be in \(-inf, inf\); got inf\.$",
        ),
        (
            lambda: gaussian_kl_diagonal(np.zeros(3), 1.0, np.zeros(2), 1.0),
            r"^`mu_q`, `var_q`, `mu_p` and `var_p` must broadcast together; got shapes \(3,\), "
            r"\(\), \(2,\), \(\)\.$",
        ),
        (
            lambda: gaussian_kl_grouped(-1, 0.0, 1.0, 1.0),
            r"^`numel` must be an integer >= 0; got -1\.0\.$",
        ),
        (
            lambda: gaussian_kl_grouped(3, -1.0, 1.0, 1.0),
            r"^`sq_delta` must be in \[0, inf\); got -1\.0\.$",
        ),
        (
            lambda: gaussian_kl_grouped([1, 2], [1.0, 2.0, 3.0], 1.0, 1.0),
            r"^`numel`, `sq_delta`, `var_q` and `var_p` must broadcast together",
        ),
    ],
)
def test_error_messages(call, message) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        call()
