"""Batched local searches: compass search and Levenberg–Marquardt on projected residuals."""

from __future__ import annotations

import numpy as np
import pytest

from fits import ModelSpec, TradeoffModel, prepare_data
from fits.estimate._search import distinct_starts, levenberg_marquardt, pattern_search
from fits.estimate._varpro import Problem
from tests.fits._sim import simulate_runs


def test_pattern_search_finds_minima_inside_bounds():
    from scipy.optimize import minimize

    target = np.array([[0.3, -0.2], [1.5, 0.7]])

    def f(theta, rows):
        quad = ((theta - target[rows]) ** 2 * [1.0, 30.0]).sum(axis=1)
        return quad + 0.5 * theta[:, 0] * theta[:, 1]

    lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    rows = np.array([0, 1])
    theta, value = pattern_search(
        f, np.zeros((2, 2)), rows, lo, hi, np.array([0.25, 0.25]), tol=1e-9
    )
    for j in range(2):
        ref = minimize(
            lambda t, j=j: f(t[None], np.array([j]))[0],
            np.zeros(2),
            bounds=list(zip(lo, hi, strict=True)),
            method="L-BFGS-B",
            options={"ftol": 1e-15, "gtol": 1e-12},
        )
        assert theta[j] == pytest.approx(ref.x, abs=1e-5)
        assert value[j] == pytest.approx(ref.fun, abs=1e-9)
    assert theta[1, 0] == 1.0  # the second optimum sits on the bound


def test_levenberg_marquardt_reaches_the_projected_optimum():
    data = prepare_data(simulate_runs(0))
    model = TradeoffModel.for_data(ModelSpec(), data)
    y = data.cells["r_mean"].to_numpy()[None]
    problem = Problem(model, data.cell_d, data.cell_n, y, data.cell_weight)
    start = np.log([[1.0, 2.0]])
    theta, rss = levenberg_marquardt(problem, start, np.zeros(1, dtype=int), model.lo, model.hi)
    ref, ref_value = pattern_search(
        problem.objective,
        theta.copy(),
        np.zeros(1, dtype=int),
        model.lo,
        model.hi,
        np.array([0.01, 0.01]),
        tol=1e-10,
        max_iter=300,
    )
    assert rss[0] == pytest.approx(ref_value[0], rel=1e-9)
    assert theta[0] == pytest.approx(ref[0], abs=1e-4)


def test_distinct_starts_skip_neighbours():
    table = np.array([[0.0], [0.1], [0.2], [5.0], [0.3]])  # a 5-point 1-D grid, one draw
    starts = distinct_starts(table, (5,), 3)
    assert list(starts[0]) == [0, 2, 4]  # 1 is a neighbour of 0, 3 of 2 and 4
