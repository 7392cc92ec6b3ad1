"""Tests of the compiled kernel pacbound/_kl_inverse_kernel.c (its own log, log1p and exp, its
domain check, its buffer handling, its agreement with the numpy passes).

The kl inverses it computes are checked against 100-digit mpmath in test_kl_inverse.py, which
runs every test on both implementations.
"""

from __future__ import annotations

import math
import os

import mpmath as mp
import numpy as np
import pytest

from pacbound import _kl_inverse
from pacbound._kl_inverse_backend import compiled_kernel, use_numpy_backend

#: Set on a machine without a C compiler, where the package installs without the kernel.
ALLOW_MISSING = os.environ.get("PACBOUND_ALLOW_NO_KERNEL") == "1"
KERNEL = compiled_kernel()
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled kernel is not built")


def test_the_kernel_is_built() -> None:
    # `pip install -e .` builds it wherever gcc is present (CI included). A missing kernel
    # silently costs ~4x (numpy passes), so it is a failure unless explicitly allowed.
    assert KERNEL is not None or ALLOW_MISSING, (
        "pacbound._kl_inverse_kernel is not built: reinstall with a C compiler present "
        "(`pip install -e .`), or set PACBOUND_ALLOW_NO_KERNEL=1 to accept the numpy path"
    )


@needs_kernel
def test_domain_constants_match_the_python_side() -> None:
    from pacbound._kl import TINY

    assert KERNEL.Q_MIN_UPPER == TINY
    assert KERNEL.Q_MIN_LOWER == _kl_inverse._LOWER_Q_MIN
    assert KERNEL.C_MAX == _kl_inverse._C_HUGE
    assert KERNEL.ISA in {"x86-64-v3", "baseline"}


# --------------------------------------------------------------------------------------------
# the kernel's own elementary functions: < 1 ulp against 40-digit mpmath
# --------------------------------------------------------------------------------------------


def _max_ulp_error(x: np.ndarray, which: int, truth) -> float:
    out = np.empty_like(x)
    KERNEL.elementary(x, out, which)
    worst = 0.0
    with mp.workdps(40):
        for xi, yi in zip(x.tolist(), out.tolist(), strict=True):
            exact = truth(mp.mpf(xi))
            worst = max(worst, float(abs(mp.mpf(yi) - exact)) / math.ulp(float(exact)))
    return worst


@needs_kernel
def test_log_is_within_one_ulp() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            10.0 ** rng.uniform(-307.0, 307.0, 2000),
            1.0 + rng.uniform(-0.3, 0.42, 2000),
            1.0 + rng.integers(1, 100, 100) * 2.0**-52,
            1.0 - rng.integers(1, 100, 100) * 2.0**-53,
            [2.2250738585072014e-308, 1.7e308, 0.7071067811865476, 1.4142135623730951, 0.5, 2.0],
        ]
    )
    assert _max_ulp_error(x, 0, mp.log) < 1.0


@needs_kernel
def test_log1p_is_within_one_ulp() -> None:
    rng = np.random.default_rng(2)
    z = np.concatenate(
        [
            10.0 ** rng.uniform(-300.0, -1.0, 1500),
            -(10.0 ** rng.uniform(-300.0, -0.01, 1500)),
            rng.uniform(-0.999, 10.0, 1500),
            10.0 ** rng.uniform(0.0, 300.0, 500),
            -(1.0 - 10.0 ** rng.uniform(-15.9, -0.1, 500)),  # 1 + z down to 2^-53
            [-0.2928932188134524, 0.41421356237309503, -(1.0 - 2.0**-53), 1e-320],
        ]
    )
    assert _max_ulp_error(z, 1, mp.log1p) < 1.0


@needs_kernel
def test_exp_is_within_one_ulp() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [
            rng.uniform(-708.0, 700.0, 2000),
            10.0 ** rng.uniform(-20.0, 0.0, 500),
            -(10.0 ** rng.uniform(-20.0, 0.0, 500)),
            [0.0, -708.0, 700.0, 0.34657359027997264, -0.34657359027997264],
        ]
    )
    assert _max_ulp_error(x, 2, mp.exp) < 1.0


# --------------------------------------------------------------------------------------------
# domain check and buffers
# --------------------------------------------------------------------------------------------


@needs_kernel
@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize(
    ("q", "c"),
    [
        (0.0, 0.1),
        (1.0, 0.1),
        (1.0 - 2.0**-53, 0.1),
        (0.5, 0.0),
        (0.5, 1e3),
        (0.5, math.inf),
        (math.nan, 0.1),
        (0.5, math.nan),
        (-0.1, 0.1),
        (0.5, -1.0),
        (1e-300, 0.1),
    ],
)
def test_pairs_outside_the_interior_are_refused(q: float, c: float, lower: bool) -> None:
    qs = np.full(600, 0.3)
    cs = np.full(600, 0.2)
    qs[517], cs[517] = q, c  # in the third block of 256
    out = np.full(600, -1.0)
    if lower or q != 1e-300:  # 1e-300 is interior for the sup (>= 2^-1022), not for the inf
        # the two blocks before it are written, nothing from its block on
        assert KERNEL.interior(qs, cs, out, lower) == 512
        assert (out[:512] > 0.0).all() and (out[512:] == -1.0).all()
    else:
        assert KERNEL.interior(qs, cs, out, lower) == 600


@needs_kernel
def test_interior_pairs_are_computed_and_match_the_public_functions() -> None:
    rng = np.random.default_rng(4)
    q = rng.uniform(0.01, 0.99, 1000)
    c = 10.0 ** rng.uniform(-8.0, 1.0, 1000)
    for lower, public in ((False, _kl_inverse.kl_inv_upper), (True, _kl_inverse.kl_inv_lower)):
        out = np.empty(1000)
        assert KERNEL.interior(q, c, out, lower) == 1000
        np.testing.assert_array_equal(out, public(q, c))


@needs_kernel
def test_bad_buffers_are_refused() -> None:
    q = np.full(4, 0.3)
    with pytest.raises(TypeError, match="q must be a contiguous float64 buffer"):
        KERNEL.interior(q.astype(np.float32), q, np.empty(4), False)
    with pytest.raises(ValueError, match="same length"):
        KERNEL.interior(q, q[:3], np.empty(4), False)
    with pytest.raises((ValueError, BufferError)):
        KERNEL.interior(np.full(8, 0.3)[::2], q, np.empty(4), False)  # not contiguous
    read_only = np.empty(4)
    read_only.setflags(write=False)
    with pytest.raises((ValueError, BufferError)):
        KERNEL.interior(q, q, read_only, False)
    with pytest.raises(ValueError, match="which must be 0"):
        KERNEL.elementary(q, np.empty(4), 3)


# --------------------------------------------------------------------------------------------
# agreement with the numpy passes over the whole interior
# --------------------------------------------------------------------------------------------


@needs_kernel
@pytest.mark.parametrize("lower", [False, True])
def test_kernel_and_numpy_agree_within_their_log_difference(lower: bool) -> None:
    # Same algorithm, same rounding of every operation but the logs (< 1 ulp each): results
    # agree to ~1e-15 relative; the tiny lower inverses (say 1e-200), whose allowance is
    # 2^-48 |ln p| relative, to that allowance.
    rng = np.random.default_rng(5)
    n = 200_000
    q = np.concatenate([rng.uniform(0.0, 1.0, n // 2), 10.0 ** rng.uniform(-300.0, 0.0, n // 2)])
    q = np.clip(q, 1e-279, 1.0 - 2.0**-52)
    c = 10.0 ** rng.uniform(-30.0, 2.9, n)
    out = np.empty(n)
    assert KERNEL.interior(q, c, out, lower) == n
    with use_numpy_backend():
        ref = (_kl_inverse.kl_inv_lower if lower else _kl_inverse.kl_inv_upper)(q, c)
    tol = 2.0**-48 * np.maximum(1.0, np.abs(np.log(np.maximum(ref, 1e-300)))) + 1e-15
    assert np.all(np.abs(out - ref) <= tol * np.abs(ref))
    assert np.mean(out == ref) > 0.5  # most agree to the bit


@needs_kernel
@pytest.mark.parametrize("lower", [False, True])
def test_avx2_and_baseline_loops_agree_to_the_bit(lower: bool) -> None:
    # The loops chosen at load time (AVX2 + FMA here where the CPU has them) and the SSE2 ones
    # round every operation alike (no contraction, no reordering), so they must agree exactly;
    # this also runs the SSE2 loops, which machines without AVX2 use.
    rng = np.random.default_rng(6)
    n = 50_003  # not a multiple of the vector width or the block
    q = np.clip(10.0 ** rng.uniform(-250.0, 0.0, n), 1e-279, 1.0 - 2.0**-52)
    c = 10.0 ** rng.uniform(-20.0, 2.9, n)
    chosen, baseline = np.empty(n), np.empty(n)
    assert KERNEL.interior(q, c, chosen, lower) == n
    assert KERNEL.interior(q, c, baseline, lower, True) == n
    np.testing.assert_array_equal(chosen, baseline)
