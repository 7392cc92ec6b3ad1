"""Leave-one-budget-out and forward-chaining validation."""

from __future__ import annotations

import numpy as np

from fits import ModelSpec, TradeoffModel, prepare_data
from fits.estimate._crossval import _folds, cross_validate, summarize_cv
from tests.fits._sim import simulate_runs


def test_folds():
    folds = _folds(np.array([1.0, 2.0, 3.0, 4.0]))
    assert [f for f in folds if f[0] == "forward"] == [
        ("forward", [1.0, 2.0], 3.0),
        ("forward", [1.0, 2.0, 3.0], 4.0),
    ]
    assert len([f for f in folds if f[0] == "leave-one-budget-out"]) == 4


def _cross_validate(runs, *, n_resamples, baselines=True):
    """Linear loss, default grid, automatic bootstrap, 90% intervals, seed 0."""
    data = prepare_data(runs)
    model = TradeoffModel.for_data(ModelSpec(), data)
    rows = cross_validate(
        data,
        model,
        loss="linear",
        f_scale=None,
        grid=None,
        n_resamples=n_resamples,
        bootstrap="auto",
        confidence_level=0.9,
        rng=np.random.default_rng(0),
        baselines=baselines,
    )
    return data, rows


def test_cross_validation_rows_and_summary():
    data, rows = _cross_validate(simulate_runs(3, noise=0.005), n_resamples=60)
    theory = [r for r in rows if r["model"] == "theory"]
    assert len(theory) == 6 and all(r["status"] == "ok" for r in theory)
    for r in theory:
        assert r["mae"] >= abs(r["bias"]) and r["dstar_low"] <= r["dstar_pred"] <= r["dstar_high"]
        assert r["dstar_obs"] in set(data.d_levels)
    # the true model predicts held-out budgets far better than the baselines
    summary = {(s["scheme"], s["model"]): s for s in summarize_cv(rows)}
    lobo = summary[("leave-one-budget-out", "theory")]
    assert lobo["fitted"] == lobo["folds"] == 4 and lobo["mae"] < 0.01
    assert lobo["mae"] < summary[("leave-one-budget-out", "pooled quadratic")]["mae"]
    assert 0.0 <= lobo["dstar_in_interval"] <= 1.0


def test_folds_that_cannot_be_fitted_are_reported():
    runs = simulate_runs(3, budgets=(64, 256, 1024), d_levels=(2.0, 3.0))
    _, rows = _cross_validate(runs, n_resamples=0, baselines=False)
    assert len(rows) == 4
    assert all(r["status"] == "not fitted: 4 cells for 5 parameters" for r in rows)
    summary = summarize_cv(rows)
    assert all(s["fitted"] == 0 and "mae" not in s for s in summary)
