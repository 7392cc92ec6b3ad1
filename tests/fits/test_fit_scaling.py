"""Fits on many runs with a continuous difficulty (issue 15, item 11): the difficulty is binned
within each budget, cell statistics are linear in the runs, and cross-validation folds are
warm-started at the full fit's optimum without moving the folds' optima."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from fits import FitConfig, ModelSpec, TradeoffModel, fit_tradeoff, prepare_data
from fits.estimate._bootstrap import resample, seed_cell_draws
from fits.estimate._core import fit_core
from fits.estimate._crossval import _folds, cross_validate
from fits.exceptions import FitError, InsufficientDataError
from fits.model._cells import cell_sums, inverse_variance_weights
from fits.results import FitResult
from pacbound.exceptions import InvalidParameterError
from tests.fits._sim import simulate_runs
from tests.fits._sim_continuous import simulate_continuous_runs


def test_cell_sums_match_a_one_hot_product():
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 7, 50)
    values = rng.normal(size=(3, 4, 50))
    onehot = np.zeros((50, 7))
    onehot[np.arange(50), cells] = 1.0
    np.testing.assert_allclose(
        cell_sums(values, cells, 7), np.einsum("...r,rc->...c", values, onehot), atol=1e-12
    )
    assert cell_sums(np.ones(50), cells, 9).shape == (9,)  # empty trailing cells sum to 0


def test_continuous_difficulty_is_quantile_binned_within_each_budget():
    runs = simulate_continuous_runs(2000, seed=3)
    data = prepare_data(runs)
    budgets = sorted(runs["n"].unique())
    assert data.binning is not None
    assert data.binning["max_bins"] == 12
    assert data.binning["budgets"] == [float(b) for b in budgets]
    assert data.binning["bins"] == [12] * len(budgets)
    assert data.n_cells == 12 * len(budgets)
    # the runs keep their own difficulty; a cell sits at the mean difficulty of its runs
    np.testing.assert_array_equal(data.runs["difficulty"].to_numpy(), runs["difficulty"])
    d = data.runs["difficulty"].to_numpy(float)
    means = cell_sums(d, data.cell_of_run, data.n_cells) / data.cells["m"].to_numpy()
    np.testing.assert_allclose(data.cell_d, means, rtol=1e-12)
    # quantile bins: equal counts within a budget (up to one run), disjoint difficulty ranges
    for b in budgets:
        sel = data.cells["n"] == b
        m = data.cells.loc[sel, "m"].to_numpy()
        assert m.max() - m.min() <= 1
        ranges = [
            (d[data.cell_of_run == c].min(), d[data.cell_of_run == c].max())
            for c in np.flatnonzero(sel.to_numpy())
        ]
        ranges.sort()
        assert all(hi < lo for (_, hi), (lo, _) in itertools.pairwise(ranges))
    # budgets are binned on their own, so a subset (a cross-validation fold) has the same cells
    sub = data.subset(budgets[1:])
    kept = data.cells[data.cells["n"].isin(budgets[1:])].reset_index(drop=True)
    np.testing.assert_allclose(sub.cells["d"], kept["d"], rtol=1e-12)
    np.testing.assert_allclose(sub.cells["r_mean"], kept["r_mean"], rtol=1e-12)


def test_a_designed_grid_is_not_binned():
    runs = simulate_runs(0)
    data = prepare_data(runs)
    plain = prepare_data(runs, max_bins=0)
    assert data.binning is None and plain.binning is None
    np.testing.assert_array_equal(data.cell_d, plain.cell_d)
    np.testing.assert_array_equal(data.cell_of_run, plain.cell_of_run)


def test_max_bins_sets_the_cap_and_zero_keeps_every_difficulty():
    runs = simulate_continuous_runs(300, seed=1)
    assert prepare_data(runs, max_bins=0).n_cells == 300
    five = prepare_data(runs, max_bins=5)
    assert five.binning["max_bins"] == 5
    assert (five.cells.groupby("n").size() <= 5).all()
    # a budget with no more distinct difficulties than the cap keeps them
    few = runs[runs["n"] == 64].head(4)
    mixed = prepare_data(pd.concat([runs[runs["n"] != 64], few]), max_bins=5)
    assert 64.0 not in mixed.binning["budgets"]
    assert sorted(mixed.cells.loc[mixed.cells["n"] == 64, "d"]) == sorted(few["difficulty"])
    with pytest.raises(InsufficientDataError, match="max_bins"):
        prepare_data(runs, max_bins=-1)
    with pytest.raises(InvalidParameterError, match="max_bins"):
        FitConfig(max_bins=1)


def test_seed_cell_draws_equal_the_per_run_resample():
    for runs in (simulate_runs(0), simulate_continuous_runs(1500, seed=2)):
        data = prepare_data(runs)
        assert data.weighting == "inverse-variance"
        r, train, _ = resample(data, "seeds", 40, np.random.default_rng(5), None)
        y_c, q_c, K_c, W_c = seed_cell_draws(data, 40, np.random.default_rng(5))
        w = inverse_variance_weights(r, data.cell_of_run, data.n_cells)
        np.testing.assert_allclose(y_c, data.cell_means(r), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(q_c, data.cell_means(train), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(W_c, cell_sums(w, data.cell_of_run, data.n_cells), rtol=1e-10)
        assert K_c is None


@pytest.mark.parametrize(
    ("runs", "model"),
    [
        (simulate_runs(0), "power"),
        (simulate_runs(1, noise=0.04), "power"),
        (simulate_runs(2, train_slope=0.02, budgets=(64, 256, 1024, 2048, 8192)), "exp"),
        (simulate_continuous_runs(600, seed=4), "power"),
    ],
)
def test_warm_started_fold_fits_match_the_full_search(runs, model):
    data = prepare_data(runs)
    tm = TradeoffModel.for_data(ModelSpec.parse(model), data)
    full = fit_core(tm, data)
    for _, train_b, _ in _folds(data.n_levels):
        sub = data.subset(train_b)
        try:
            cold = fit_core(tm, sub)
        except FitError as exc:
            with pytest.raises(FitError, match=str(exc)[:30]):
                fit_core(tm, sub, start=full.theta)
            continue
        warm = fit_core(tm, sub, start=full.theta)
        assert warm.message.startswith("Levenberg-Marquardt")
        assert warm.rss <= cold.rss * (1 + 1e-6)
        np.testing.assert_allclose(warm.theta, cold.theta, atol=1e-3)
        np.testing.assert_allclose(warm.amps, cold.amps, rtol=1e-3, atol=1e-6)


def test_cross_validation_with_warm_starts_matches_the_cold_one():
    data = prepare_data(simulate_runs(0, budgets=(64, 256, 1024, 2048, 8192)))
    tm = TradeoffModel.for_data(ModelSpec(), data)
    full = fit_core(tm, data)
    common = dict(
        loss="linear", f_scale=None, grid=None, n_resamples=30, bootstrap="auto",
        confidence_level=0.9,
    )  # fmt: skip
    cold = cross_validate(data, tm, rng=np.random.default_rng(0), **common)
    warm = cross_validate(data, tm, rng=np.random.default_rng(0), start=full.theta, **common)
    assert len(cold) == len(warm)
    for a, b in zip(cold, warm, strict=True):
        assert (a["scheme"], a["model"], a["status"]) == (b["scheme"], b["model"], b["status"])
        if a["status"] != "ok":
            continue
        for key in ("mae", "bias", "dstar_pred", "dstar_low", "dstar_high"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
        for key in ("nearest_bin_match", "in_interval"):
            assert a.get(key) == b.get(key)


def test_fit_on_a_continuous_difficulty_records_the_binning():
    runs = simulate_continuous_runs(2000, seed=0)
    result = fit_tradeoff(runs, n_resamples=20, cv_resamples=5)
    assert result.data.n_cells == 60
    assert result.config["max_bins"] == 12
    assert result.config["difficulty_bins"]["bins"] == [12] * 5
    assert "quantile-binned within each budget into at most 12 bins" in str(result.summary())
    again = FitResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.data.n_cells == 60
    assert fit_tradeoff(runs.head(200), max_bins=0, n_resamples=0, cv=False).data.n_cells == 200
