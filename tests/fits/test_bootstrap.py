"""The design-preserving bootstrap, and the coverage of its intervals."""

from __future__ import annotations

import numpy as np
import pytest

from fits import InsufficientDataError, fit_tradeoff, prepare_data
from fits.estimate._bootstrap import resample
from tests.fits._sim import BUDGETS, TRUTH, simulate_runs, true_dstar


def test_seed_resampling_stays_in_cells_with_the_right_variance():
    data = prepare_data(simulate_runs(0))
    rng = np.random.default_rng(0)
    r, _, K = resample(data, "seeds", 4000, rng, data.cells["r_mean"].to_numpy())
    assert K is None and r.shape == (4000, data.n_runs)
    # every resampled value comes from its own cell (after the variance correction)
    means = data.cell_means(r)
    sd = data.cells["r_sd"].to_numpy()
    m = data.cells["m"].to_numpy()
    # the variance of a resampled cell mean equals the usual s^2/m (thanks to sqrt(m/(m-1)))
    assert np.var(means, axis=0) == pytest.approx(sd**2 / m, rel=0.12)
    assert np.mean(means, axis=0) == pytest.approx(
        data.cells["r_mean"].to_numpy(), abs=3 * np.max(sd)
    )


def test_wild_resampling_keeps_offsets():
    data = prepare_data(simulate_runs(0))
    fitted = data.cells["r_mean"].to_numpy() - 0.001
    r, train, _ = resample(data, "wild", 50, np.random.default_rng(1), fitted)
    assert (train == data.train).all()
    resid = data.r - fitted[data.cell_of_run]
    assert np.abs(r - fitted[data.cell_of_run]) == pytest.approx(
        np.broadcast_to(np.abs(resid), r.shape)
    )


def test_seed_resampling_needs_replicates():
    data = prepare_data(simulate_runs(0).drop_duplicates(["difficulty", "n"]))
    with pytest.raises(InsufficientDataError, match="needs two or more runs"):
        resample(data, "seeds", 10, np.random.default_rng(0), data.cells["r_mean"].to_numpy())


@pytest.mark.slow
def test_intervals_cover_the_truth_at_about_the_nominal_rate():
    """40 simulated data sets x 200 refits: the 90% intervals of d*(n) and of the parameters."""
    truth_d = np.array([true_dstar(n, d_ref=2.0, **TRUTH) for n in BUDGETS])
    hits_d, hits_p = [], []
    for s in range(40):
        res = fit_tradeoff(
            simulate_runs(1000 + s),
            n_resamples=200,
            cv=False,
            baselines=False,
            train_model="flat",
            confidence_level=0.9,
            seed=s,
        )
        lo = np.array([e.interval.low for e in res.d_star])
        hi = np.array([e.interval.high for e in res.d_star])
        hits_d.append((lo <= truth_d) & (truth_d <= hi))
        hits_p.append(
            [
                res.intervals[k].low <= TRUTH[k] <= res.intervals[k].high
                for k in ("g", "b", "A", "B")
            ]
        )
    rate_d, rate_p = float(np.mean(hits_d)), float(np.mean(hits_p))
    assert 0.8 <= rate_d <= 0.99, rate_d
    assert 0.8 <= rate_p <= 0.99, rate_p
