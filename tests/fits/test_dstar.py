"""d*(n): bounded search against the closed form, edges, the shift exponent, surfaces."""

from __future__ import annotations

import numpy as np
import pytest

from fits import ModelSpec, TradeoffModel, prepare_data
from fits.model._dstar import argmin_over_d, dstar, make_surfaces, shift_exponent
from tests.fits._sim import simulate_runs


@pytest.fixture(scope="module")
def setup():
    data = prepare_data(simulate_runs(0))
    return data, TradeoffModel.for_data(ModelSpec(), data)


def test_search_matches_closed_form(setup):
    data, model = setup
    theta = np.log([[2.0, 1.0], [1.5, 0.7]])
    amps = np.array([[2.0, 0.215, 0.1], [1.5, 0.3, 0.0]])
    flat = make_surfaces(data, model, "flat")
    budgets = np.array([64.0, 300.0, 2048.0])
    closed, cb, how = dstar(model, theta, amps, flat, budgets)
    assert how == "closed form"
    # a flat training surface through "interpolate" runs the search on the same curve
    search_model = TradeoffModel.for_data(ModelSpec("power", "exp"), data)
    assert not search_model.has_closed_form

    def fun(x, n):
        return model.predict(theta, amps, x, n)

    value, br = argmin_over_d(fun, 2, budgets, *model.d_range)
    inside = cb & br
    assert value[inside] == pytest.approx(closed[inside], abs=1e-6)
    assert (cb == br).all()


def test_edges_are_flagged(setup):
    data, model = setup
    flat = make_surfaces(data, model, "flat")
    # no extrapolation term: the gap only grows with d, so d* is the smallest difficulty
    value, br, _ = dstar(
        model, np.log([[2.0, 1.0]]), np.array([[2.0, 0.0, 0.1]]), flat, np.array([64.0])
    )
    assert value[0, 0] == 2.0 and not br[0, 0]
    value, br, _ = dstar(
        model, np.log([[2.0, 1.0]]), np.array([[1e-6, 1.0, 0.1]]), flat, np.array([64.0])
    )
    assert value[0, 0] == 6.0 and not br[0, 0]
    lin = make_surfaces(data, model, "linear")
    value, br, how = dstar(
        model, np.log([[2.0, 1.0]]), np.array([[2.0, 0.0, 0.1]]), lin, np.array([64.0])
    )
    assert how == "bounded search" and not br[0, 0]


def test_shift_exponent():
    budgets = np.array([10.0, 100.0, 1000.0])
    vals = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0], [-1.0, 1.0, 2.0]])
    out = shift_exponent(vals, budgets)
    assert out[0] == pytest.approx(np.log(2) / np.log(10)) and out[1] == 0.0 and np.isnan(out[2])


def test_linear_training_surface_is_a_line_per_budget(setup):
    data, model = setup
    train = np.where(data.cell_n == 64, 0.1 + 0.05 * data.cell_d, 0.2)
    surf = make_surfaces(data, model, "linear", train_cells=train)
    assert surf.train(np.array([2.5, 5.5]), 64.0) == pytest.approx([0.225, 0.375])
    assert surf.train(3.3, 2048.0) == pytest.approx(0.2)
