"""Preparing runs for a fit: the target, cells, weights and interpolating surfaces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fits import InsufficientDataError, prepare_data
from fits.model._cells import CellSurface, inverse_variance_weights
from pacbound.exceptions import InvalidParameterError
from tests.fits._sim import simulate_runs


def test_cells_and_target():
    runs = simulate_runs(0)
    data = prepare_data(runs)
    assert data.n_runs == 60 and data.n_cells == 20 and list(data.n_levels) == [64, 256, 1024, 2048]
    cell = data.cells.iloc[0]
    sel = (runs["difficulty"] == cell["d"]) & (runs["n"] == cell["n"])
    assert cell["m"] == 3
    assert cell["r_mean"] == pytest.approx(
        (runs.loc[sel, "test_loss"] - runs.loc[sel, "train_loss"]).mean()
    )
    assert cell["test_sd"] == pytest.approx(runs.loc[sel, "test_loss"].std(ddof=1))
    err = prepare_data(runs, target="error")
    assert err.r == pytest.approx((1 - runs["test_acc"]) - (1 - runs["train_acc"]))


def test_inverse_variance_weights_shrink_toward_the_pooled_variance():
    runs = simulate_runs(0)
    data = prepare_data(runs)
    assert data.weighting == "inverse-variance" and data.w.mean() == pytest.approx(1.0)
    cell_of = data.cell_of_run
    # runs of one cell share a weight; a noisier cell weighs less
    for c in range(data.n_cells):
        assert np.ptp(data.w[cell_of == c]) == 0
    sd = data.cells["r_sd"].to_numpy()
    w_cell = data.cells["weight"].to_numpy()
    assert np.corrcoef(sd, w_cell)[0, 1] < 0
    # draws get the same treatment, row by row
    batch = inverse_variance_weights(np.stack([data.r, data.r]), cell_of, data.n_cells)
    assert batch[0] == pytest.approx(data.w) and batch[1] == pytest.approx(data.w)
    none = prepare_data(runs, weights="none")
    assert (none.w == 1).all() and none.weighting == "none"
    single = runs.drop_duplicates(["difficulty", "n"])
    assert prepare_data(single).weighting == "none"
    with pytest.raises(InsufficientDataError, match="'inverse-variance' needs two or more runs"):
        prepare_data(single, weights="inverse-variance")


def test_bad_input_messages():
    runs = simulate_runs(0)
    with pytest.raises(InvalidParameterError, match="`target` must be one of"):
        prepare_data(runs, target="accuracy")
    with pytest.raises(InsufficientDataError, match=r"`runs` must have columns \['kl'\]"):
        prepare_data(runs, complexity="kl")
    with pytest.raises(
        InsufficientDataError, match=r"`exclude` must name runs of the table; got unknown \['zz'\]"
    ):
        prepare_data(runs, exclude=["zz"])
    bad = runs.assign(test_acc=1.5)
    with pytest.raises(InsufficientDataError, match=r"`test_acc` must be in \[0, 1\]; got 1.5"):
        prepare_data(bad, target="error")
    with pytest.raises(InsufficientDataError, match="`runs` must be a runs table"):
        prepare_data([1, 2, 3])


def test_surface_interpolates_and_clamps():
    d = np.array([1.0, 2.0, 4.0])
    n = np.array([10.0, 1000.0])
    values = np.array([[0.0, 1.0], [2.0, 3.0], [6.0, 7.0]])
    surf = CellSurface(d, n, values)
    assert surf(1.5, 10.0) == pytest.approx(1.0)
    assert surf(3.0, 100.0) == pytest.approx(4.5)  # halfway in d, halfway in log n
    assert surf(9.0, 1e6) == pytest.approx(7.0) and surf(0.0, 1.0) == pytest.approx(0.0)
    batch = CellSurface(d, n, np.stack([values, values + 1]))
    assert batch(np.array([1.0, 4.0]), 10.0).shape == (2, 2)
    paired = batch(np.array([[1.0], [4.0]]), np.array([[10.0], [10.0]]))
    assert paired[:, 0] == pytest.approx([0.0, 7.0])
    logs = CellSurface(d, n, np.exp(values), log=True)
    assert logs(1.5, 10.0) == pytest.approx(np.e)


def test_irregular_design_fills_missing_cells():
    runs = simulate_runs(0)
    runs = runs[~((runs["difficulty"] == 4.0) & (runs["n"] == 256))]
    data = prepare_data(runs)
    surf = data.surface(data.cells["train_mean"].to_numpy())
    assert np.isfinite(surf.values).all() and data.n_cells == 19
    sub = data.subset([64, 256])
    assert list(sub.n_levels) == [64, 256] and isinstance(sub.runs, pd.DataFrame)
