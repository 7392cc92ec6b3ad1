"""The model-free d*: observed best, seed-resampling probabilities, local parabola, edge flags."""

from __future__ import annotations

import numpy as np
import pytest

from fits.estimate import model_free_dstar
from fits.estimate._model_free import local_vertex
from fits.model import prepare_data
from tests.fits._sim import simulate_runs


def test_local_vertex_recovers_a_parabola_and_flags_edges():
    d = np.array([1.0, 2.0, 4.0, 8.0])
    # exact parabola with its vertex at 2.7, on an uneven grid
    y = (d - 2.7) ** 2
    assert local_vertex(d, y) == pytest.approx(2.7, abs=1e-12)
    # minimum at the edge: the edge itself
    assert local_vertex(d, d) == 1.0
    assert local_vertex(d, -d) == 8.0
    # batched rows
    rows = np.stack([(d - 2.7) ** 2, (d - 5.0) ** 2, d])
    np.testing.assert_allclose(local_vertex(d, rows), [2.7, 5.0, 1.0], atol=1e-12)


def test_model_free_dstar_on_runs_with_a_known_optimum():
    runs = simulate_runs(0, noise=0.002)
    d = runs["difficulty"].to_numpy(float)
    rng = np.random.default_rng(0)
    # optimum at d = 3.4 at every budget (between grid points 3 and 4), tiny noise
    runs["test_loss"] = runs["train_loss"] + 0.02 * (d - 3.4) ** 2 + rng.normal(0, 1e-4, len(d))
    data = prepare_data(runs)
    out = model_free_dstar(data, n_resamples=200, rng=1)
    assert [e.n for e in out] == sorted(data.n_levels.tolist())
    for e in out:
        assert e.observed_best == 3.0
        assert e.status == "bracketed"
        assert e.smooth == pytest.approx(3.4, abs=0.05)
        assert e.interval.low <= e.smooth <= e.interval.high
        assert sum(e.best_probability.values()) == pytest.approx(1.0)
        assert e.best_probability[3.0] > 0.9
        assert type(e).from_dict(e.to_dict()) == e


def test_edge_when_the_minimum_is_on_the_grid_edge():
    runs = simulate_runs(0)
    d = runs["difficulty"].to_numpy(float)
    runs["test_loss"] = runs["train_loss"] + 0.05 * d  # easiest is best everywhere
    out = model_free_dstar(prepare_data(runs), n_resamples=100)
    assert all(e.status == "edge" and e.observed_best == 2.0 and e.smooth == 2.0 for e in out)
    assert "edge" in str(out[0])
