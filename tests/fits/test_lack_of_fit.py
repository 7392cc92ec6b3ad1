"""The pure-error lack-of-fit test: its size under the model, its power against a wrong form."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import stats

from fits.estimate import fit_core, lack_of_fit
from fits.model import ModelSpec, TradeoffModel, prepare_data
from tests.fits._sim import simulate_runs


def _fit(runs, weights="auto", model="power"):
    data = prepare_data(runs, weights=weights)
    tm = TradeoffModel.for_data(ModelSpec.parse(model), data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_core(tm, data, refuse=False), data


def _fixed_optimum(seed: int, noise: float = 0.01):
    """Runs whose best difficulty is d = 3 at every budget: test = train + a parabola in d
    + a 1/sqrt(n) offset. The theory's form (d* moving with n) cannot describe them."""
    runs = simulate_runs(seed, noise=noise)
    d = runs["difficulty"].to_numpy(float)
    n = runs["n"].to_numpy(float)
    rng = np.random.default_rng(10_000 + seed)
    runs["test_loss"] = (
        runs["train_loss"] + 0.05 * (d - 3.0) ** 2 + 1.0 / np.sqrt(n) + 0.1
        + rng.normal(0.0, noise, len(d))
    )
    return runs


def test_decomposition_and_f_law_by_hand():
    fit, data = _fit(simulate_runs(3), weights="none")
    lof = lack_of_fit(fit, data)
    # by hand from the cell table: pure error from the seeds, lack of fit from the cell means
    cells = data.cells
    ss_pe = float(np.sum((data.r - cells["r_mean"].to_numpy()[data.cell_of_run]) ** 2))
    ss_lof = float(np.sum(cells["m"] * (cells["r_mean"] - fit.fitted_cells) ** 2))
    assert lof.ss_pe == pytest.approx(ss_pe, rel=1e-12)
    assert lof.ss_lof == pytest.approx(ss_lof, rel=1e-12)
    assert lof.ss_pe + lof.ss_lof == pytest.approx(fit.rss, rel=1e-9)
    p = len(fit.model.param_names)
    assert lof.df == (data.n_cells - p, data.n_runs - data.n_cells)
    f = (ss_lof / lof.df[0]) / (ss_pe / lof.df[1])
    assert lof.statistic == pytest.approx(f, rel=1e-12)
    assert lof.p_value == pytest.approx(stats.f.sf(f, *lof.df), rel=1e-12)
    assert lof.method == "F distribution"


def test_size_under_the_theory_and_power_against_a_fixed_optimum():
    # 200 datasets simulated from the fitted form itself, 3 seeds per cell, inverse-variance
    # weights as the fit uses them by default: rejections at alpha = 0.05 must be 2%-10%
    rejected = tested = 0
    for seed in range(200):
        fit, data = _fit(simulate_runs(seed))
        assert data.weighting == "inverse-variance"
        lof = lack_of_fit(fit, data, alpha=0.05, n_resamples=199, rng=seed)
        assert lof.testable and "parametric bootstrap" in lof.method
        tested += 1
        rejected += lof.rejected
    assert 0.02 <= rejected / tested <= 0.10, f"{rejected}/{tested}"
    # runs whose optimum does not move with n: rejected in >= 90% of datasets
    power = [lack_of_fit(*_fit(_fixed_optimum(s)), alpha=0.05, n_resamples=199, rng=s).rejected
             for s in range(40)]
    assert np.mean(power) >= 0.9


def test_not_testable_without_replicates():
    runs = simulate_runs(0, seeds=1)
    fit, data = _fit(runs)
    lof = lack_of_fit(fit, data)
    assert not lof.testable and not lof.rejected
    assert "no replicates" in lof.reason
    assert "not testable" in str(lof)
    assert lof.to_dict()["testable"] is False
    # through JSON (NaN written as null) and back
    from pacbound.support import to_jsonable

    again = type(lof).from_dict(json.loads(json.dumps(to_jsonable(lof.to_dict()))))
    assert not again.testable and np.isnan(again.statistic) and again.reason == lof.reason


def test_verdict_names_the_model_when_rejected():
    fit, data = _fit(_fixed_optimum(0))
    lof = lack_of_fit(fit, data)
    assert lof.rejected
    assert "does not describe these runs" in lof.verdict and "model's" in lof.verdict
    again = type(lof).from_dict(lof.to_dict())
    assert again == lof


def test_bad_alpha_is_refused():
    from pacbound.exceptions import InvalidParameterError

    fit, data = _fit(simulate_runs(0))
    with pytest.raises(InvalidParameterError, match="`alpha` must be in"):
        lack_of_fit(fit, data, alpha=1.5)
