"""Tests of pacbound._kl_inverse: kl_inv_upper and kl_inv_lower (and NaN/shape handling shared
with kl_bernoulli).

Reference values: KL_INVERSE, mpmath at 100 digits (tests/pacbound/reference/bounds_md.py). Ground truth
for the conservative-side and accuracy checks: 100-digit mpmath (tests/pacbound/_mpref.py).
Every test runs twice: on the compiled kernel and on the numpy passes (the ``backend`` fixture).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacbound import kl_bernoulli, kl_inv_lower, kl_inv_upper
from pacbound._kl_inverse_backend import compiled_kernel, use_numpy_backend
from pacbound.exceptions import InvalidParameterError, TradeoffError
from tests.pacbound._mpref import DPS, mp_kl_float, mp_kl_inv
from tests.pacbound.reference.bounds_md import KL_INVERSE

ONE_BELOW = 1.0 - 2.0**-53
TINY = float(np.finfo(float).tiny)


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def backend(request: pytest.FixtureRequest):
    """Each test on both implementations of the interior (see pacbound._kl_inverse_backend)."""
    if request.param == "numpy":
        with use_numpy_backend():
            yield request.param
        return
    if compiled_kernel() is None:  # test_kl_inverse_kernel.py fails when it should be built
        pytest.skip("the compiled kl-inverse kernel is not built")
    yield request.param


def _check_against_truth(q: float, c: float, *, upper: bool, tol: float = 1e-12) -> None:
    """Conservative side and absolute error <= tol against the 100-digit inverse."""
    got = float((kl_inv_upper if upper else kl_inv_lower)(q, c))
    truth = mp_kl_inv(q, c, upper=upper, guess=got)
    with mp.workdps(DPS):
        diff = mp.mpf(got) - truth
    side = "upper" if upper else "lower"
    if upper:
        assert diff >= 0, f"{side}({q!r}, {c!r}) = {got!r} is below the truth {truth}"
    else:
        assert diff <= 0, f"{side}({q!r}, {c!r}) = {got!r} is above the truth {truth}"
    assert abs(diff) <= tol, f"{side}({q!r}, {c!r}) = {got!r}, truth {truth}, error {diff}"


# --------------------------------------------------------------------------------------------
# reference values (KL_INVERSE)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "c", "sup", "inf"), KL_INVERSE)
def test_reference_values(q: float, c: float, sup: float, inf: float | None) -> None:
    assert float(kl_inv_upper(q, c)) == pytest.approx(sup, rel=1e-10, abs=0)
    if inf is None:  # the exact value underflows: 0 is the only conservative double
        assert float(kl_inv_lower(q, c)) == 0.0
    else:
        assert float(kl_inv_lower(q, c)) == pytest.approx(inf, rel=1e-10, abs=0)


@pytest.mark.parametrize(("q", "c"), [(row[0], row[1]) for row in KL_INVERSE])
@pytest.mark.parametrize("upper", [True, False])
def test_reference_rows_are_conservative(q: float, c: float, upper: bool) -> None:
    _check_against_truth(q, c, upper=upper)


def test_reference_rows_within_tens_of_ulp() -> None:
    # the reference sup values have 17 significant digits. The rigorous rounding margin (a bound
    # on the residual's rounding error, robust to a 4-ulp vector log) costs up to ~50 ulp.
    for q, c, sup, _ in KL_INVERSE:
        got = float(kl_inv_upper(q, c))
        assert got >= sup - 2 * math.ulp(sup) and got - sup <= 64 * math.ulp(sup), (q, c)


# --------------------------------------------------------------------------------------------
# closed forms, edges, NaN, saturation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [1e-300, 1e-12, 0.01, 1.0, 30.0, 800.0])
def test_closed_forms_at_q_edges(c: float) -> None:
    sup0 = float(kl_inv_upper(0.0, c))
    assert sup0 == pytest.approx(-math.expm1(-c), rel=4e-16)
    assert sup0 >= mp_kl_inv(0.0, c, upper=True)  # rounded up
    assert float(kl_inv_lower(0.0, c)) == 0.0
    assert float(kl_inv_upper(1.0, c)) == 1.0
    inf1 = float(kl_inv_lower(1.0, c))
    assert inf1 == pytest.approx(math.exp(-c), rel=4e-16, abs=0)
    assert inf1 <= mp_kl_inv(1.0, c, upper=False)  # rounded down


@pytest.mark.parametrize("q", [0.0, 1e-300, 0.3, 0.5, ONE_BELOW, 1.0])
def test_closed_forms_at_c_edges(q: float) -> None:
    assert float(kl_inv_upper(q, 0.0)) == q
    assert float(kl_inv_lower(q, 0.0)) == q
    assert float(kl_inv_upper(q, math.inf)) == 1.0
    assert float(kl_inv_lower(q, math.inf)) == 0.0


@pytest.mark.parametrize("c", [745.0, 999.0, 1e3, 1e10, 1e299, 1.7e308])
@pytest.mark.parametrize("q", [1e-300, 0.3, 0.5, 0.9999, 1 - 1e-12, ONE_BELOW])
def test_huge_finite_budgets_are_finite_and_conservative(q: float, c: float) -> None:
    """Budgets up to the largest double: no NaN from overflow, and still on the safe side."""
    sup, inf = float(kl_inv_upper(q, c)), float(kl_inv_lower(q, c))
    assert sup == 1.0  # the exact sup is in [1 - 2^-53, 1): 1 is its conservative rounding
    assert 0.0 <= inf <= mp_kl_inv(q, c, upper=False)
    # the iteration and the closed form agree where they meet
    assert float(kl_inv_upper(q, np.nextafter(1e3, 0.0))) == 1.0


def test_nan_in_gives_nan_out() -> None:
    out = kl_inv_upper([np.nan, 0.3, 0.3], [0.1, np.nan, 0.1])
    assert np.isnan(out[0]) and np.isnan(out[1]) and not np.isnan(out[2])
    assert np.isnan(kl_inv_lower(np.nan, 0.1))
    assert np.isnan(kl_bernoulli(np.nan, 0.2)) and np.isnan(kl_bernoulli(0.2, np.nan))


def test_saturation_returns_one_only_when_kl_at_last_double_is_within_budget() -> None:
    q = 0.5
    c_sat = float(mp_kl_float(q, ONE_BELOW))
    assert float(kl_inv_upper(q, c_sat * 1.001)) == 1.0
    # a budget whose exact sup is ~1 - 2^-50 < 1: the answer must stay below 1
    c = float(mp_kl_float(q, 1.0 - 2.0**-50))
    got = float(kl_inv_upper(q, c))
    assert got < 1.0
    _check_against_truth(q, c, upper=True)


def test_subnormal_and_extreme_inputs_stay_conservative() -> None:
    for q, c in [(5e-324, 0.1), (1e-310, 1e-5), (TINY, 1e-300), (ONE_BELOW, 1e-30)]:
        for upper in (True, False):
            _check_against_truth(q, c, upper=upper)


def test_lower_underflow_returns_zero() -> None:
    # kl(q || smallest normal double) <= c: the exact inf lies below every normal double
    for q, c in [(1e-9, 0.02), (0.3, 800.0)]:
        assert mp_kl_float(q, TINY) <= c
        assert float(kl_inv_lower(q, c)) == 0.0


# --------------------------------------------------------------------------------------------
# shapes, types, broadcasting
# --------------------------------------------------------------------------------------------


def test_scalars_give_floats_and_arrays_give_arrays() -> None:
    out = kl_inv_upper(0.1, 0.05)
    assert isinstance(out, float) and np.ndim(out) == 0
    assert isinstance(kl_inv_lower(np.float32(0.1), 0.05), float)
    assert isinstance(kl_bernoulli(0.1, 0.2), float)
    arr = kl_inv_upper([[0.1], [0.2]], [0.05, 0.1, 0.2])
    assert isinstance(arr, np.ndarray) and arr.shape == (2, 3) and arr.dtype == np.float64
    assert kl_bernoulli(np.zeros((2, 1)), np.full(4, 0.5)).shape == (2, 4)


def test_vectorised_equals_elementwise() -> None:
    rng = np.random.default_rng(3)
    q = np.concatenate([rng.uniform(0, 1, 40), [0.0, 1.0, 1e-300, ONE_BELOW]])
    c = np.concatenate([10 ** rng.uniform(-12, 2, 40), [0.1, 0.1, 1.0, 1e-3]])
    for solve in (kl_inv_upper, kl_inv_lower):
        vec = solve(q, c)
        one = np.array([solve(a, b) for a, b in zip(q, c, strict=True)])
        np.testing.assert_array_equal(vec, one)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: kl_inv_upper(1.5, 0.1), r"^`q` must be in \[0, 1\]; got 1\.5\.$"),
        (lambda: kl_inv_lower(-0.1, 0.1), r"^`q` must be in \[0, 1\]; got -0\.1\.$"),
        (lambda: kl_inv_upper(0.1, -1e-3), r"^`c` must be in \[0, inf\]; got -0\.001\.$"),
        (lambda: kl_inv_upper([0.1, 2.0], 0.1), r"^`q` must be in \[0, 1\]; got 2\.0\.$"),
        (
            lambda: kl_inv_upper("abc", 0.1),
            r"^`q` must be a real number or an array of real numbers; got 'abc'\.$",
        ),
    ],
)
def test_error_messages(call, message) -> None:
    with pytest.raises(InvalidParameterError, match=message) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, TradeoffError)


def test_shapes_that_do_not_broadcast_raise() -> None:
    with pytest.raises(ValueError):
        kl_inv_upper(np.zeros(3), np.zeros(2))


# --------------------------------------------------------------------------------------------
# properties (hypothesis)
# --------------------------------------------------------------------------------------------

probability = st.one_of(
    st.floats(0.0, 1.0),
    st.floats(-300.0, 0.0).map(lambda e: 10.0**e),
    st.floats(-16.0, -1.0).map(lambda e: 1.0 - 10.0**e),
)
budget = st.one_of(
    st.floats(-30.0, 3.0).map(lambda e: 10.0**e),
    st.floats(0.0, 20.0),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(q1=probability, q2=probability, c=budget)
def test_monotone_in_q(q1: float, q2: float, c: float) -> None:
    lo, hi = sorted((q1, q2))
    assert kl_inv_upper(lo, c) <= kl_inv_upper(hi, c)
    assert kl_inv_lower(lo, c) <= kl_inv_lower(hi, c)


@SETTINGS
@given(q=probability, c1=budget, c2=budget)
def test_monotone_in_c(q: float, c1: float, c2: float) -> None:
    lo, hi = sorted((c1, c2))
    assert kl_inv_upper(q, lo) <= kl_inv_upper(q, hi)
    assert kl_inv_lower(q, lo) >= kl_inv_lower(q, hi)


@SETTINGS
@given(q=probability, c=budget)
def test_kl_at_the_inverse_is_the_budget_within_rounding(q: float, c: float) -> None:
    """kl(q||p) >= c at the returned p (conservative), and <= c a hair closer to q."""
    for solve, toward_q in ((kl_inv_upper, -1.0), (kl_inv_lower, 1.0)):
        p = float(solve(q, c))
        if p in (0.0, 1.0) or p == q:
            continue
        assert mp_kl_float(q, p) >= c * (1 - 1e-13)
        closer = p + toward_q * max(1e-12, 64 * math.ulp(p))
        if (closer - q) * (p - q) > 0:
            assert mp_kl_float(q, closer) <= c


@SETTINGS
@given(q=probability, c=budget)
def test_conservative_and_within_1e12_of_100_digit_truth(q: float, c: float) -> None:
    _check_against_truth(q, c, upper=True)
    _check_against_truth(q, c, upper=False)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=probability, c=budget)
def test_conservative_and_accurate_many_examples(q: float, c: float) -> None:
    _check_against_truth(q, c, upper=True)
    _check_against_truth(q, c, upper=False)


def test_tiny_budgets_near_the_edges_of_q() -> None:
    for q in (1e-12, 1e-6, 0.5, 1 - 1e-6, 1 - 1e-12):
        for c in (1e-9, 1e-15, 1e-25):
            _check_against_truth(q, c, upper=True)
            _check_against_truth(q, c, upper=False)
