"""Baselines and the common Gaussian likelihood, checked against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.tools.eval_measures import aicc

from fits import ModelSpec, TradeoffModel, prepare_data
from fits.estimate._baselines import (
    fit_baselines,
    gaussian_llf,
    information_criteria,
    pooled_quadratic,
    quadratic_per_budget,
    separable,
)
from fits.model._dstar import make_surfaces
from tests.fits._sim import simulate_runs


@pytest.fixture(scope="module")
def data():
    return prepare_data(simulate_runs(0))


def test_llf_and_aicc_match_statsmodels_wls(data):
    d = data.runs["difficulty"].to_numpy(float)
    X = np.column_stack([np.ones_like(d), d, d**2])
    res = sm.WLS(data.r, X, weights=data.w).fit()
    assert gaussian_llf(res.resid, data.w) == pytest.approx(res.llf, rel=1e-12)
    ic = information_criteria(res.llf, data.n_runs, 3)
    assert ic["aicc"] == pytest.approx(aicc(res.llf, data.n_runs, 4))


def test_pooled_quadratic_is_a_wls_fit(data):
    bl = pooled_quadratic(data)
    d = data.runs["difficulty"].to_numpy(float)
    L = np.log(data.runs["n"].to_numpy(float))
    X = np.column_stack([np.ones_like(d), d, d**2, L, L * d, L * d**2])
    res = sm.WLS(data.r, X, weights=data.w).fit()
    assert list(bl.params.values()) == pytest.approx(list(res.params), rel=1e-8, abs=1e-10)
    assert bl.llf == pytest.approx(res.llf, rel=1e-10) and bl.n_params == 6
    assert bl.predict(np.array([3.0]), np.array([100.0]))[0] == pytest.approx(
        res.params @ [1, 3, 9, np.log(100), 3 * np.log(100), 9 * np.log(100)]
    )


def test_per_budget_quadratic_and_its_vertex(data):
    bl = quadratic_per_budget(data)
    assert bl.n_params == 12 and len(bl.params) == 4
    model = TradeoffModel.for_data(ModelSpec(), data)
    surf = make_surfaces(data, model, "flat")
    values, bracketed = bl.dstar(surf, data.n_levels, *model.d_range)
    lo, hi = model.d_range
    for (key, beta), v, b in zip(bl.params.items(), values, bracketed, strict=True):
        # flat training metric: d* is the argmin over [lo, hi] of the fitted quadratic gap,
        # i.e. its vertex when the parabola opens upwards and the vertex is inside, else an end
        assert beta[2] > 0, key  # convex in d at every budget on these simulated runs
        vertex = -beta[1] / (2 * beta[2])
        inside = lo < vertex < hi
        assert b == inside, key
        assert v == pytest.approx(min(max(vertex, lo), hi), abs=1e-5), key
    # the simulated optimum moves from below the range (n=64) into it: both branches are taken
    assert list(bracketed) == [False, True, True, True]
    too_few = prepare_data(simulate_runs(0, d_levels=(2.0, 3.0)))
    assert quadratic_per_budget(too_few) is None


def test_separable_law_and_the_list(data):
    model = TradeoffModel.for_data(ModelSpec(), data)
    sep = separable(data, model)
    assert sep.n_params == 7 and set(sep.params) == {"alpha", "g", "b", "E", "A", "B", "C"}
    assert min(sep.params["A"], sep.params["B"], sep.params["C"]) >= 0
    names = [b.name for b in fit_baselines(data, model)]
    assert names == ["quadratic per budget", "pooled quadratic", "separable"]
