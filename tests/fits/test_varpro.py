"""Variable projection: the closed-form constrained solve, grid tables, pattern search, guards."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import lsq_linear

from fits import ModelSpec, TradeoffModel, prepare_data
from fits.estimate._varpro import (
    Problem,
    Refusal,
    _sums,
    constrained_ls,
    grid_points,
    grid_table,
    normal_equations,
    project_gte,
    refusal,
)
from tests.fits._sim import simulate_runs


def _reference(X, y, w):
    sw = np.sqrt(w)
    res = lsq_linear(
        X * sw[:, None],
        y * sw,
        bounds=([0, 0, -np.inf], [np.inf] * 3),
        tol=1e-14,
        lsmr_tol="auto",
        method="bvls",
    )
    return res.x, float(np.sum(w * (y - X @ res.x) ** 2))


def test_closed_form_projection_matches_bounded_least_squares():
    rng = np.random.default_rng(0)
    for _ in range(30):
        X = np.column_stack([rng.normal(size=12), rng.normal(size=12), np.ones(12)])
        y, w = rng.normal(size=12), rng.uniform(0.5, 2.0, size=12)
        coef, rss = project_gte(_sums(X[:, 0], X[:, 1], y, w))
        ref_coef, ref_rss = _reference(X, y, w)
        assert rss == pytest.approx(ref_rss, rel=1e-9, abs=1e-12)
        assert coef == pytest.approx(ref_coef, abs=1e-7)
        G, h, yy = normal_equations(X, y, w)
        c2, r2 = constrained_ls(G, h, yy, np.array([True, True, False]))
        assert r2 == pytest.approx(ref_rss, rel=1e-9, abs=1e-12) and c2 == pytest.approx(
            ref_coef, abs=1e-7
        )


def test_grid_table_equals_one_solve_per_draw():
    data = prepare_data(simulate_runs(0))
    model = TradeoffModel.for_data(ModelSpec(), data)
    rng = np.random.default_rng(1)
    y = data.cells["r_mean"].to_numpy() + rng.normal(0, 0.01, size=(3, data.n_cells))
    w = rng.uniform(0.5, 2, size=(3, data.n_cells))
    problem = Problem(model, data.cell_d, data.cell_n, y, w)
    pts = grid_points(model, 9)
    table = grid_table(problem, pts, chunk=20)
    for j in range(3):
        _, rss = problem.solve(pts, np.full(len(pts), j))
        assert table[:, j] == pytest.approx(rss, rel=1e-9)


def test_refusal_codes():
    data = prepare_data(simulate_runs(0))
    model = TradeoffModel.for_data(ModelSpec(), data)
    theta = np.array(
        [[np.log(2.0), np.log(1.0)], [model.hi[0], np.log(1.0)], [np.log(2.0), np.log(1.0)]]
    )
    amps = np.array([[1.0, 0.2, 0.1], [1.0, 0.2, 0.1], [1.0, 0.0, 0.1]])
    X = model.columns(theta, data.cell_d, data.cell_n)
    assert list(refusal(model, theta, amps, X, 0.5)) == [
        Refusal.OK,
        Refusal.ON_BOUND,
        Refusal.VANISHED_AMPLITUDE,
    ]
