"""Tests of pacbound._certificates: Dziugaite-Roy, the Monte-Carlo certificate, test-set bounds.

Reference values: mpmath at 100 digits and published reports (tests/pacbound/reference/bounds_md.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

import pacbound
from pacbound import dziugaite_roy, dziugaite_roy_grid, kl_bound, kl_inv_upper, mc_certificate
from pacbound.exceptions import InvalidParameterError
from tests.pacbound.reference.bounds_md import DZIUGAITE_ROY_T600, MC_STEP, TEST_SET

test_set_bound = pacbound.test_set_bound  # not collected: it carries __test__ = False
test_set_lower_bound = pacbound.test_set_lower_bound  # likewise

# (k, n, delta, Beta^-1(delta; k, n - k + 1)): bisection in mpmath at 60 digits.
LOWER_TEST_SET = [
    (100, 10000, 0.01, 0.0078297530465669516147),
    (5, 100, 0.05, 0.019905563662171838044),
    (250, 256, 0.025, 0.94968709657718504747),
    (1, 1, 0.05, 0.05),
]


@pytest.mark.parametrize(("n", "k", "delta", "binomial", "chernoff"), TEST_SET)
def test_test_set_reference(n: int, k: int, delta: float, binomial: float, chernoff: float) -> None:
    r = test_set_bound(k, n, delta)
    assert r.value == pytest.approx(binomial, rel=1e-9)  # 10 digits in the reference
    assert r.params["chernoff"] == pytest.approx(chernoff, rel=1e-9)
    assert r.value <= r.params["chernoff"] * (1 + 1e-12)
    # it is the binomial tail: P[Bin(n, value) <= k] = delta
    assert binom.cdf(k, n, r.value) == pytest.approx(delta, rel=1e-9)
    assert r.emp_risk == k / n and r.kl == 0.0


def test_test_set_edges_and_vectorisation() -> None:
    r = test_set_bound([0, 5, 100], [100, 100, 100], 0.05)
    assert r.value[2] == 1.0 and r.params["k"].tolist() == [0, 5, 100]
    assert r.value[0] == pytest.approx(1 - 0.05 ** (1 / 100), rel=1e-12)
    assert test_set_bound.__test__ is False


@pytest.mark.parametrize(("k", "n", "delta", "exact"), LOWER_TEST_SET)
def test_test_set_lower_bound_reference(k: int, n: int, delta: float, exact: float) -> None:
    value = float(test_set_lower_bound(k, n, delta))
    assert value == pytest.approx(exact, rel=1e-12)
    assert value <= exact  # rounded toward the conservative side
    # it is the binomial tail: P[Bin(n, value) >= k] = delta
    assert binom.sf(k - 1, n, value) == pytest.approx(delta, rel=1e-9)


def test_test_set_lower_bound_edges_and_bad_input() -> None:
    values = test_set_lower_bound([0, 5, 100], 100, 0.05)
    assert values.shape == (3,) and values[0] == 0.0
    assert values[2] == pytest.approx(0.05 ** (1 / 100), rel=1e-12)  # P[Bin = n] = p^n
    assert test_set_lower_bound.__test__ is False
    with pytest.raises(InvalidParameterError, match=r"`k` must be an integer in \[0, n\]; got 5"):
        test_set_lower_bound(5, 3, 0.05)
    with pytest.raises(InvalidParameterError, match="`delta` must be in"):
        test_set_lower_bound(1, 3, 1.0)
    with pytest.raises(InvalidParameterError, match="`k`"):
        test_set_lower_bound(1.5, 3, 0.05)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 5000),
    frac=st.floats(0.0, 1.0),
    delta=st.floats(1e-6, 0.5),
)
def test_test_set_lower_bound_brackets_the_rate(n: int, frac: float, delta: float) -> None:
    k = round(frac * n)
    low = float(test_set_lower_bound(k, n, delta))
    assert 0.0 <= low <= k / n <= float(test_set_bound(k, n, delta).value)
    if k < n:  # one more error never lowers it
        assert float(test_set_lower_bound(k + 1, n, delta)) >= low


def test_mc_step_reference() -> None:
    ref = MC_STEP
    r = mc_certificate(ref["q_mc"], 500.0, 30000, 0.025, m=ref["m"], delta_mc=ref["delta_mc"])
    assert r.params["mc_risk_bound"] == pytest.approx(ref["value"], rel=1e-10)
    assert float(kl_inv_upper(0.05, math.log(2 / 0.01) / 1000)) == pytest.approx(
        ref["value"], rel=1e-10
    )


def test_mc_certificate_chains_the_two_steps_and_charges_both_deltas() -> None:
    r = mc_certificate(0.05, 500.0, 30000, 0.025, m=1000, delta_mc=0.005, union={"sigma grid": 4})
    inner = kl_bound(r.params["mc_risk_bound"], 500.0, 30000, 0.025, union={"sigma grid": 4})
    assert r.value == inner.value
    assert r.delta == pytest.approx(0.03)
    assert r.deltas["monte carlo"] == 0.005 and r.deltas["pac-bayes"] == 0.025
    assert r.deltas["pac-bayes/sigma grid"] == pytest.approx(0.025 / 4)
    assert r.union == {"sigma grid": 4}
    cat = mc_certificate(0.05, 500.0, 30000, 0.025, m=1000, delta_mc=0.005, bound="catoni", C=1.0)
    assert cat.params["bound"] == "catoni" and cat.params["C"] == 1.0


def test_dziugaite_roy_t600() -> None:
    ref = DZIUGAITE_ROY_T600
    r = dziugaite_roy(ref["q"], ref["kl"], ref["m"], ref["delta"], j=1)
    assert r.value == pytest.approx(ref["value"], abs=5e-4)  # "0.161", as reported (3 digits)
    budget = (ref["kl"] + math.log(math.pi**2 * ref["m"] / (6 * ref["delta"]))) / (ref["m"] - 1)
    assert r.complexity == pytest.approx(budget, rel=1e-15)
    assert r.value == float(kl_inv_upper(ref["q"], budget))


def test_dziugaite_roy_charges_two_ln_j() -> None:
    r1 = dziugaite_roy(0.05, 1000.0, 50000, 0.05, j=1)
    r7 = dziugaite_roy(0.05, 1000.0, 50000, 0.05, j=7)
    assert r7.complexity - r1.complexity == pytest.approx(2 * math.log(7) / 49999, rel=1e-9)
    assert r7.deltas["prior grid"] == pytest.approx(0.05 * 6 / (math.pi**2 * 49))


def test_dziugaite_roy_grid_projection_never_gives_j_below_one() -> None:
    j, var = dziugaite_roy_grid([10.0, 0.1, 0.0999, 0.05, 1e-6])
    assert j.min() >= 1 and j.tolist()[:3] == [1, 1, 1]
    assert j[3] == round(100 * math.log(0.1 / 0.05))
    np.testing.assert_allclose(var, 0.1 * np.exp(-j / 100.0), rtol=1e-15)
    j_up, _ = dziugaite_roy_grid(0.05, rounding="up")
    j_down, _ = dziugaite_roy_grid(0.05, rounding="down")
    assert j_up == j_down + 1
    # a variance on the grid is accepted, with its index recorded
    on_grid = 0.1 * math.exp(-69 / 100)
    r = dziugaite_roy(0.05, 1000.0, 50000, 0.05, prior_var=on_grid)
    assert r.params["j"] == 69 and r.value == dziugaite_roy(0.05, 1000.0, 50000, 0.05, j=69).value


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: dziugaite_roy(0.05, 10, 1000, 0.05, prior_var=0.05),
            r"^`prior_var` must lie on the grid 0\.1\*exp\(-j/100\), j = 1, 2, \.\.\.; got 0\.05 "
            r"\(nearest grid point j=69",
        ),
        (
            lambda: dziugaite_roy(0.05, 10, 1000, 0.05, j=0),
            r"^`j` must be an integer >= 1; got 0\.0\.$",
        ),
        (lambda: dziugaite_roy(0.05, 10, 1000, 0.05), r"^exactly one of `j` and `prior_var`"),
        (
            lambda: dziugaite_roy(0.05, 10, 1, 0.05, j=1),
            r"^`n` must be an integer >= 2; got 1\.0\.$",
        ),
        (
            lambda: mc_certificate(0.05, 10, 1000, 0.5, m=10, delta_mc=0.5),
            r"^`delta \+ delta_mc` must be < 1; got 1\.0\.$",
        ),
        (
            lambda: mc_certificate(0.05, 10, 1000, 0.05, m=0, delta_mc=0.01),
            r"^`m` must be an integer >= 1; got 0\.0\.$",
        ),
        (
            lambda: mc_certificate(0.05, 10, 1000, 0.05, m=10, delta_mc=0.01, bound="x"),
            r"^`bound` must be one of 'kl', 'catoni'; got 'x'\.$",
        ),
        (
            lambda: test_set_bound(11, 10, 0.05),
            r"^`k` must be an integer in \[0, n\]; got 11\.0\.$",
        ),
        (lambda: test_set_bound(-1, 10, 0.05), r"^`k` must be an integer >= 0; got -1\.0\.$"),
        (lambda: dziugaite_roy_grid(0.0), r"^`prior_var` must be in \(0, inf\); got 0\.0\.$"),
    ],
)
def test_error_messages(call, message) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        call()
