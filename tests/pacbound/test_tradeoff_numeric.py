"""The bounded d*(n) search (pacbound._tradeoff_numeric), on functions with known minimisers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pacbound import DStarSolution
from pacbound._tradeoff_numeric import (
    as_budgets,
    check_d_range,
    check_params,
    minimise_over_d,
)
from pacbound.exceptions import InvalidParameterError
from pacbound.support._io import to_jsonable


def _quadratic(target):
    """B = (d - target(n))**2 * s + 1 and its derivative, with a scale parameter s."""

    def B(d, n, s):
        return s * (d - target(n)) ** 2 + 1.0

    def foc(d, n, s):
        return 2.0 * s * (d - target(n))

    return B, foc


def test_interior_minimisers_to_full_precision():
    B, foc = _quadratic(lambda n: np.sqrt(n) / 7.0)
    n = np.geomspace(1.0, 1e8, 40)
    d, ok, bmin = minimise_over_d(B, foc, n, (3.0,), (1e-3, 1e5))
    assert ok.all()
    np.testing.assert_allclose(d, np.sqrt(n) / 7.0, rtol=1e-14)
    np.testing.assert_allclose(bmin, 1.0, rtol=1e-14)


def test_edges_are_reported_not_extrapolated():
    B, foc = _quadratic(lambda n: n)
    n = np.array([0.5, 3.0, 50.0])
    d, ok, _ = minimise_over_d(B, foc, n, (1.0,), (1.0, 10.0))
    assert ok.tolist() == [False, True, False]
    assert d[0] == 1.0 and d[2] == 10.0  # the edges, flagged
    assert d[1] == pytest.approx(3.0, rel=1e-14)


def test_minimiser_between_the_first_two_grid_points_is_bracketed():
    B, foc = _quadratic(lambda n: 1.001e-6 + 0 * n)
    d, ok, _ = minimise_over_d(B, foc, np.array([1.0]), (1.0,), (1e-6, 1.0))
    assert ok[0] and d[0] == pytest.approx(1.001e-6, rel=1e-12)


def test_linear_grid_and_nonfinite_values():
    B, foc = _quadratic(lambda n: -2.0 + 0 * n)
    d, ok, _ = minimise_over_d(B, foc, np.array([1.0]), (1.0,), (-5.0, 5.0))
    assert ok[0] and d[0] == pytest.approx(-2.0, rel=1e-14)

    def nowhere(d, n, s):
        return np.full(np.broadcast(d, n).shape, np.nan)

    d, ok, bmin = minimise_over_d(nowhere, nowhere, np.array([1.0, 2.0]), (1.0,), (1.0, 2.0))
    assert np.isnan(d).all() and not ok.any() and np.isnan(bmin).all()


def test_falls_back_to_minimisation_when_the_derivative_is_unusable():
    B, _ = _quadratic(lambda n: 2.5 + 0 * n)

    def broken(d, n, s):
        return np.full(np.broadcast(d, n).shape, np.nan)

    d, ok, _ = minimise_over_d(B, broken, np.array([1.0, 9.0]), (1.0,), (0.1, 10.0))
    assert ok.all()
    np.testing.assert_allclose(d, 2.5, rtol=1e-7)


def test_check_params():
    params = ("A", "C", "delta")
    assert check_params(params, {"A": 1, "C": 2.5, "delta": 0.05}) == (1.0, 2.5, 0.05)
    with pytest.raises(InvalidParameterError, match=r"^`x` must be a parameter of B\(d, n\) "):
        check_params(params, {"A": 1, "C": 1, "delta": 0.1, "x": 2})
    with pytest.raises(InvalidParameterError, match=r"^`C` must be given \(a positive number\)"):
        check_params(params, {"A": 1, "delta": 0.1})
    with pytest.raises(InvalidParameterError, match=r"^`A` must be in \(0, inf\); got -1\.0\.$"):
        check_params(params, {"A": -1, "C": 1, "delta": 0.1})
    with pytest.raises(InvalidParameterError, match=r"^`delta` must be in \(0, 1\); got 1\.5\.$"):
        check_params(params, {"A": 1, "C": 1, "delta": 1.5})
    with pytest.raises(InvalidParameterError, match=r"^`A` must be a single number; got "):
        check_params(params, {"A": [1, 2], "C": 1, "delta": 0.1})
    with pytest.raises(InvalidParameterError, match=r"^`C` must not be NaN; got nan\.$"):
        check_params(params, {"A": 1, "C": float("nan"), "delta": 0.1})


def test_check_d_range_and_budgets():
    assert check_d_range([1, 2]) == (1.0, 2.0)
    for bad in ((2, 1), (0, float("inf")), "ab", (1,), None):
        with pytest.raises(InvalidParameterError, match=r"^`d_range` must be a pair of"):
            check_d_range(bad)
    arr, shape = as_budgets([[10, 100]])
    assert arr.tolist() == [10.0, 100.0] and shape == (1, 2)
    with pytest.raises(InvalidParameterError, match=r"^`n` must be in \(0, inf\); got 0\.0\.$"):
        as_budgets([10, 0])
    with pytest.raises(InvalidParameterError, match=r"^`n` must not be NaN"):
        as_budgets(float("nan"))


def test_solution_renderings():
    sol = DStarSolution(
        n=np.array([10.0, 1e4]),
        d_star=np.array([1.5, 2.0]),
        bracketed=np.array([True, False]),
        B_min=np.array([0.3, 0.1]),
        dd_dn=np.array([0.01, np.nan]),
        method="numeric",
        d_range=(0.5, 2.0),
        params={"A": 1.0},
    )
    text = str(sol)
    assert text.splitlines()[0] == "d*(n) (numeric in d_range [0.5, 2]; A=1)"
    assert "not bracketed" in text.splitlines()[-1] and "not bracketed" not in text.splitlines()[2]
    d = sol.to_dict()
    assert list(d) == ["method", "d_range", "params", "rows"]
    row = d["rows"][1]
    assert list(row) == ["n", "d_star", "bracketed", "B_min", "dd_dn"]
    assert (row["n"], row["d_star"], row["bracketed"]) == (1e4, 2.0, False)
    assert json.loads(json.dumps(to_jsonable(sol)))["rows"][1]["dd_dn"] is None
