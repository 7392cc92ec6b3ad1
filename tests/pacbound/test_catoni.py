"""Tests of pacbound._catoni: Catoni's bound (fixed C or a grid) and the linear-lambda bound.

Reference values: mpmath at 100 digits and published inputs (tests/pacbound/reference/bounds_md.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pacbound import DEFAULT_CATONI_GRID, DEFAULT_LAMBDA_GRID, catoni, kl_inv_upper, linear_lambda
from pacbound.exceptions import InvalidParameterError
from tests.pacbound.reference.bounds_md import (
    ALQUIER_GRID_CASE1,
    BOUND_CASES,
    CASE_IDS,
    CATONI_C_STAR_CASE1,
    LOTFI_2022,
    LOTFI_IMAGENET,
    case_args,
)


def _catoni_fixed(q: float, kl: float, n: int, delta: float, C: float) -> float:
    b = (kl + math.log(1 / delta)) / n
    return math.expm1(-C * q - b) / math.expm1(-C)


@pytest.mark.parametrize("case", BOUND_CASES, ids=CASE_IDS)
def test_catoni_c1_reference(case: dict) -> None:
    r = catoni(*case_args(case), C=1.0)
    assert r.value == pytest.approx(case["catoni_c1"], rel=1e-10)
    assert r.union == {} and r.grid is None and r.params["C"] == 1.0


@pytest.mark.parametrize("case", BOUND_CASES, ids=CASE_IDS)
def test_inf_over_c_of_catoni_is_the_kl_inverse(case: dict) -> None:
    """inf_C Catoni = kl^-1(q, (KL + ln 1/delta)/n), attained at C* = logit(p*) - logit(q)."""
    q, kl, n, delta = case_args(case)
    b = (kl + math.log(1 / delta)) / n
    p_star = float(kl_inv_upper(q, b))
    assert p_star == pytest.approx(case["catoni_inf"], rel=1e-10)
    if q > 0:
        c_star = math.log(p_star / (1 - p_star)) - math.log(q / (1 - q))
        assert catoni(q, kl, n, delta, C=c_star).value == pytest.approx(p_star, rel=1e-12)
    # no C does better (fine scan), and the scan's minimum approaches p*
    cs = np.geomspace(1e-3, 1e3, 20001)
    values = np.array([_catoni_fixed(q, kl, n, delta, C) for C in cs])
    assert values.min() >= p_star * (1 - 1e-12)
    assert values.min() == pytest.approx(p_star, rel=1e-6)


def test_catoni_optimal_c_case1() -> None:
    q, kl, n, delta = case_args(BOUND_CASES[0])
    p_star = float(kl_inv_upper(q, (kl + math.log(1 / delta)) / n))
    c_star = math.log(p_star / (1 - p_star)) - math.log(q / (1 - q))
    assert c_star == pytest.approx(CATONI_C_STAR_CASE1, abs=5e-5)


def test_lotfi_catoni_without_union_is_the_kl_inverse_with_ln20() -> None:
    ref = LOTFI_2022
    p = kl_inv_upper(ref["q"], (ref["kl"] + math.log(20)) / ref["n"])
    assert float(p) == pytest.approx(ref["catoni_as_kl_inverse_ln20"], rel=1e-10)


def test_lotfi_imagenet_catoni() -> None:
    ref = LOTFI_IMAGENET
    kl = 1e5 * math.log2(20) * math.log(2)
    p = kl_inv_upper(ref["q"], (kl + math.log(1 / ref["delta"])) / ref["n"])
    assert float(p) == pytest.approx(ref["catoni"], rel=1e-10)


def test_catoni_grid_pays_ln_k_and_records_the_choice() -> None:
    q, kl, n, delta = case_args(BOUND_CASES[0])
    grid = (0.5, 1.0, 2.0, 4.0)
    r = catoni(q, kl, n, delta, grid=grid, union={"sigma grid": 3})
    expected = min(_catoni_fixed(q, kl, n, delta / 12, C) for C in grid)
    assert r.value == pytest.approx(expected, rel=1e-14)
    assert r.grid == grid and r.params["C"] == 1.0
    assert r.union == {"sigma grid": 3, "C grid": 4}
    assert r.deltas["C grid"] == pytest.approx(delta / 12) and r.deltas["total"] == delta
    # the grid bound is never below the (invalid) infimum
    assert r.value >= float(kl_inv_upper(q, (kl + math.log(1 / delta)) / n))


def test_catoni_default_grid_vectorised() -> None:
    r = catoni([0.02, 0.1], [500.0, 5000.0], [30000, 60000], 0.025)
    assert r.grid == DEFAULT_CATONI_GRID and r.union == {"C grid": 25}
    assert r.value.shape == (2,) and r.params["C"].shape == (2,)
    for i in range(2):
        one = catoni([0.02, 0.1][i], [500.0, 5000.0][i], [30000, 60000][i], 0.025)
        assert r.value[i] == one.value and r.params["C"][i] == one.params["C"]


def test_alquier_grid_reference() -> None:
    r = linear_lambda(*case_args(BOUND_CASES[0]))
    assert r.value == pytest.approx(ALQUIER_GRID_CASE1, rel=1e-10)
    assert r.grid == DEFAULT_LAMBDA_GRID and len(r.grid) == 30
    assert r.params["lambda"] == 8192.0 and r.union == {"lambda grid": 30}


def test_linear_lambda_loss_range_and_sub_gaussian() -> None:
    q, kl, n, delta = 0.3, 200.0, 10000, 0.05
    bounded = linear_lambda(q, kl, n, delta, loss_range=2.0, lambdas=[100.0])
    expected = q + 100.0 * 4.0 / 8.0 / n + (kl + math.log(1 / delta)) / 100.0
    assert bounded.value == pytest.approx(expected, rel=1e-14)
    # a [0, B] loss is (B^2/4)-sub-Gaussian: sigma = B/2 gives the same bound
    sub = linear_lambda(q, kl, n, delta, sub_gaussian=1.0, lambdas=[100.0])
    assert sub.value == pytest.approx(bounded.value, rel=1e-14)
    assert linear_lambda(-0.5, kl, n, delta, sub_gaussian=1.0).value < 1e9


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: catoni(0.1, 1, 100, 0.05, C=1.0, grid=[1.0]),
            r"^`C` and `grid` are exclusive",
        ),
        (lambda: catoni(0.1, 1, 100, 0.05, C=0.0), r"^`C` must be in \(0, inf\); got 0\.0\.$"),
        (
            lambda: catoni(0.1, 1, 100, 0.05, grid=[1.0, -2.0]),
            r"^`grid` must be in \(0, inf\); got -2\.0\.$",
        ),
        (lambda: catoni(0.1, 1, 100, 0.05, grid=[]), r"^`grid` must be a non-empty sequence"),
        (lambda: linear_lambda(1.5, 1, 100, 0.05), r"^`emp_risk` must be in \[0, 1\]; got 1\.5\.$"),
        (
            lambda: linear_lambda(0.1, 1, 100, 0.05, loss_range=0.0),
            r"^`loss_range` must be in \(0, inf\); got 0\.0\.$",
        ),
        (
            lambda: linear_lambda(0.1, 1, 100, 0.05, sub_gaussian=-1.0),
            r"^`sub_gaussian` must be in \(0, inf\); got -1\.0\.$",
        ),
    ],
)
def test_error_messages(call, message) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        call()
