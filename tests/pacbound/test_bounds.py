"""Tests of pacbound._bounds: McAllester, kl bound, maurer_xi, Thiemann, f_quad, and the shared
validation and union-bound bookkeeping.

Reference values: mpmath at 100 digits (tests/pacbound/reference/bounds_md.py, BOUND_CASES on).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from pacbound import BoundResult, f_quad, kl_bound, maurer_xi, mcallester, thiemann
from pacbound.exceptions import InvalidParameterError
from tests.pacbound.reference.bounds_md import (
    BOUND_CASES,
    CASE_IDS,
    GRAAL_PAC_BOUND_ZERO,
    LOTFI_2022,
    PACBB_MCALLESTER_INTENDED,
    XI,
    case_args,
)


@pytest.mark.parametrize("case", BOUND_CASES, ids=CASE_IDS)
def test_reference_columns(case: dict) -> None:
    args = case_args(case)
    assert mcallester(*args).value == pytest.approx(case["mcallester"], rel=1e-10)
    assert kl_bound(*args).value == pytest.approx(case["kl_2sqrt"], rel=1e-10)
    assert kl_bound(*args, xi="n+1").value == pytest.approx(case["kl_n1"], rel=1e-10)
    assert kl_bound(*args, xi="exact").value == pytest.approx(case["kl_exact"], rel=1e-10)
    quad = f_quad(*args)
    assert quad.value == pytest.approx(case["f_quad"], rel=1e-10)
    if case["lambda_star"] is not None:  # lambda* is given to 8 digits
        assert quad.params["lambda_star"] == pytest.approx(case["lambda_star"], abs=5e-9)
    assert thiemann(*args, lam=1.0).value == pytest.approx(case["f_lambda_1"], rel=1e-10)


def test_pacbb_mcallester_is_the_intended_formula() -> None:
    ref = PACBB_MCALLESTER_INTENDED
    value = mcallester(ref["q"], ref["kl"], ref["n"], ref["delta"]).value
    assert value == pytest.approx(ref["value"], rel=1e-9)  # 10 digits in the reference
    # the mis-parenthesised version log(2 sqrt n)/delta gives 0.1305972378 (what pacbb computes)
    wrong = ref["q"] + math.sqrt(
        (ref["kl"] + math.log(2 * math.sqrt(ref["n"])) / ref["delta"]) / (2 * ref["n"])
    )
    assert wrong == pytest.approx(0.1305972378, rel=1e-9) and value < wrong


def test_lotfi_2022_maurer_kl_and_thiemann() -> None:
    ref = LOTFI_2022
    args = (ref["q"], ref["kl"], ref["n"], ref["delta"])
    assert kl_bound(*args).value == pytest.approx(ref["maurer_kl"], rel=1e-10)
    assert f_quad(*args).value == pytest.approx(ref["thiemann_lambda_star"], rel=1e-10)


def test_graal_pac_bound_zero_is_twice_the_exact_xi_kl_bound() -> None:
    ref = GRAAL_PAC_BOUND_ZERO
    value = kl_bound(ref["q"], ref["kl"], ref["m"], ref["delta"], xi="exact").value
    assert 2 * value == pytest.approx(ref["value"], rel=1e-10)


# --------------------------------------------------------------------------------------------
# xi(n)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "xi"), sorted(XI.items()))
def test_xi_reference_values(n: int, xi: float) -> None:
    assert maurer_xi(n) == pytest.approx(xi, abs=5e-5)  # 4 decimals in the reference


@pytest.mark.parametrize("n", [1, 2, 7, 8, 37, 100])
def test_xi_exact_matches_mpmath_sum(n: int) -> None:
    with mp.workdps(50):
        exact = mp.fsum(
            mp.binomial(n, k) * (mp.mpf(k) / n) ** k * (1 - mp.mpf(k) / n) ** (n - k)
            for k in range(n + 1)
        )
    assert maurer_xi(n) == pytest.approx(float(exact), rel=1e-13)


def test_xi_below_two_sqrt_n_and_above_sqrt_n() -> None:
    n = np.concatenate([np.arange(2, 3000), [10**4, 10**5, 131072, 131073, 10**6, 10**9]])
    xi = maurer_xi(n)
    assert np.all(xi < 2 * np.sqrt(n)) and np.all(xi >= np.sqrt(n))
    assert maurer_xi(1) == 2.0  # equality at n = 1
    np.testing.assert_array_equal(maurer_xi(n, kind="2sqrt"), 2 * np.sqrt(n))
    np.testing.assert_array_equal(maurer_xi(n, kind="n+1"), n + 1.0)


def test_xi_large_n_is_a_tight_upper_bound() -> None:
    # above 131072 the middle of the sum is bounded by an integral: still >= the exact sum
    # (continuity across the switch) and within 1e-5 of sqrt(pi n / 2) + 2/3
    below, above = maurer_xi(131072), maurer_xi(131073)
    assert 0 < above - below < 4e-3
    for n in (10**6, 10**9, 10**12):
        asymptotic = math.sqrt(math.pi * n / 2) + 2 / 3
        assert maurer_xi(n) >= asymptotic
        assert maurer_xi(n) / asymptotic - 1 < 1e-5


# --------------------------------------------------------------------------------------------
# identities
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", BOUND_CASES, ids=CASE_IDS)
def test_inf_over_lambda_of_thiemann_is_f_quad(case: dict) -> None:
    args = case_args(case)
    quad = f_quad(*args)
    lam_star = quad.params["lambda_star"]
    assert thiemann(*args, lam=lam_star).value == pytest.approx(quad.value, rel=1e-12)
    best = minimize_scalar(
        lambda lam: thiemann(*args, lam=lam).value,
        bounds=(1e-6, 2 - 1e-6),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert best.fun == pytest.approx(quad.value, rel=1e-9)
    assert best.fun >= quad.value * (1 - 1e-12)


def test_mcallester_is_looser_than_kl_bound_with_the_same_constant() -> None:
    # kl(q||p) >= 2 (p - q)^2 (Pinsker), so the kl bound is inside McAllester's
    rng = np.random.default_rng(2)
    q, kl = rng.uniform(0, 0.5, 200), 10 ** rng.uniform(0, 4, 200)
    n = rng.integers(100, 10**6, 200)
    assert np.all(kl_bound(q, kl, n, 0.05).value <= mcallester(q, kl, n, 0.05).value)


# --------------------------------------------------------------------------------------------
# vectorisation, union bookkeeping, results
# --------------------------------------------------------------------------------------------


def test_broadcasting_and_scalar_results() -> None:
    r = kl_bound([[0.02], [0.1]], [500.0, 5000.0], 30000, 0.025)
    assert r.value.shape == (2, 2) and r.shape == (2, 2)
    single = kl_bound(0.02, 500.0, 30000, 0.025)
    assert isinstance(single.value, float) and single.shape == ()
    assert r.value[0, 0] == single.value
    assert isinstance(single, BoundResult)


def test_union_divides_delta_and_records_each_stage() -> None:
    base = mcallester(0.1, 100.0, 5000, 0.05)
    charged = mcallester(0.1, 100.0, 5000, 0.05, union={"sigma grid": 12, "lr grid": 4})
    direct = mcallester(0.1, 100.0, 5000, 0.05 / 48)
    assert charged.value == pytest.approx(direct.value, rel=1e-15)
    assert charged.value > base.value
    assert charged.union == {"sigma grid": 12, "lr grid": 4}
    assert charged.deltas["total"] == 0.05
    assert charged.deltas["sigma grid"] == pytest.approx(0.05 / 12)
    assert charged.deltas["lr grid"] == pytest.approx(0.05 / 48)
    assert charged.deltas["bound"] == pytest.approx(0.05 / 48)
    assert charged.delta == 0.05


def test_nan_passes_through() -> None:
    r = kl_bound([0.1, np.nan], 100.0, 5000, 0.05)
    assert np.isnan(r.value[1]) and not np.isnan(r.value[0])


def test_infinite_kl_gives_vacuous_bounds() -> None:
    assert kl_bound(0.1, math.inf, 100, 0.05).value == 1.0
    assert mcallester(0.1, math.inf, 100, 0.05).value == math.inf


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mcallester(1.5, 1, 100, 0.05), r"^`emp_risk` must be in \[0, 1\]; got 1\.5\.$"),
        (lambda: kl_bound(0.1, -1, 100, 0.05), r"^`kl` must be in \[0, inf\]; got -1\.0\.$"),
        (lambda: f_quad(0.1, 1, 2.5, 0.05), r"^`n` must be an integer >= 1; got 2\.5\.$"),
        (lambda: f_quad(0.1, 1, 0, 0.05), r"^`n` must be an integer >= 1; got 0\.0\.$"),
        (lambda: mcallester(0.1, 1, 100, 1.0), r"^`delta` must be in \(0, 1\); got 1\.0\.$"),
        (
            lambda: mcallester(0.1, 1, 100, [0.05, 0.0]),
            r"^`delta` must be in \(0, 1\); got 0\.0\.$",
        ),
        (
            lambda: kl_bound(0.1, 1, 100, 0.05, xi="3sqrt"),
            r"^`xi` must be one of '2sqrt', 'exact', 'n\+1'; got '3sqrt'\.$",
        ),
        (lambda: thiemann(0.1, 1, 100, 0.05, lam=2.0), r"^`lam` must be in \(0, 2\); got 2\.0\.$"),
        (
            lambda: mcallester(0.1, 1, 100, 0.05, union={"sigma grid": 0}),
            r"^`union` must map grid labels \(non-empty str\) to integer sizes >= 1; "
            r"got 'sigma grid': 0\.$",
        ),
        (
            lambda: mcallester(0.1, 1, 100, 0.05, union=[("a", 2)]),
            r"^`union` must be a mapping of grid labels to integer sizes >= 1; got \[\('a', 2\)\]\.$",
        ),
        (
            lambda: mcallester([0.1, 0.2], [1, 2, 3], 100, 0.05),
            r"^`emp_risk`, `kl`, `n` and `delta` must broadcast together; got shapes \(2,\), "
            r"\(3,\), \(\), \(\)\.$",
        ),
        (lambda: maurer_xi(0), r"^`n` must be an integer >= 1; got 0\.0\.$"),
        (lambda: maurer_xi(10, kind="x"), r"^`kind` must be one of '2sqrt', 'exact', 'n\+1'"),
    ],
)
def test_error_messages(call, message) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        call()
