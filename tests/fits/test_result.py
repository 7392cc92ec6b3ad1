"""FitResult: JSON form, reloading, predictions and d* at new budgets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fits import FitResult, RunsFileError, load_fit
from pacbound.support._io import write_json


def test_to_dict_is_json_safe_with_the_contract_keys(small_fit):
    obj = small_fit.to_dict()
    text = json.dumps(obj, allow_nan=False, default=lambda o: (_ for _ in ()).throw(TypeError(o)))
    back = json.loads(text)
    assert {
        "model",
        "params",
        "d_star",
        "intervals",
        "config",
        "data",
        "bootstrap",
        "comparison",
    } <= set(back)
    assert [set(d) >= {"n", "value", "low", "high", "bracketed"} for d in back["d_star"]] == [
        True
    ] * 4
    assert back["params"] == small_fit.params  # unrounded
    assert back["config"]["versions"]["numpy"] == np.__version__
    assert len(back["bootstrap"]["theta"]) == 100
    assert "bootstrap" not in small_fit.to_dict(include_draws=False)


def test_roundtrip_through_fit_json(small_fit, tmp_path):
    path = write_json(tmp_path / "fit.json", small_fit.to_dict())
    loaded = load_fit(tmp_path)
    assert isinstance(loaded, FitResult)
    assert loaded.params == small_fit.params and loaded.d_star == small_fit.d_star
    assert loaded.verdict == small_fit.verdict
    d = np.array([2.5, 4.0])
    n = np.array([100.0, 1500.0])
    assert loaded.predict(d, n) == pytest.approx(small_fit.predict(d, n), rel=1e-12)
    new = loaded.d_star_at([500, 1500])
    again = small_fit.d_star_at([500, 1500])
    assert new == again and new[0].low <= new[0].value <= new[0].high
    assert path.exists()


def test_predictions(small_fit):
    cells = small_fit.data.cells
    pred = small_fit.predict(cells["d"], cells["n"])
    assert np.abs(pred - cells["test_mean"]).max() < 0.03
    gap = small_fit.predict_gap(cells["d"], cells["n"])
    assert np.abs(gap - cells["r_mean"]).max() < 0.03
    draws = small_fit.predict_draws(cells["d"].to_numpy(), cells["n"].to_numpy())
    assert draws.shape == (100, len(cells))


def test_load_fit_errors(tmp_path):
    with pytest.raises(RunsFileError, match="no such fit file"):
        load_fit(tmp_path / "nope.json")
    bad = tmp_path / "fit.json"
    bad.write_text("{")
    with pytest.raises(RunsFileError, match="not valid JSON"):
        load_fit(bad)
    bad.write_text(json.dumps({"model": {}}))
    with pytest.raises(RunsFileError, match="field `params` is missing"):
        load_fit(bad)
