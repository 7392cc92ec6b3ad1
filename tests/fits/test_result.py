"""FitResult: JSON form, reloading, predictions and d* at new budgets."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fits import ConfidenceInterval, FitIntervals, FitResult, RunsFileError, load_fit
from pacbound.exceptions import InvalidParameterError
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
    assert [set(d) >= {"n", "value", "interval", "bracketed"} for d in back["d_star"]] == [True] * 4
    assert back["format_version"] == 2
    assert set(back["d_star"][0]["interval"]) == {
        "low",
        "high",
        "level",
        "method",
        "low_open",
        "high_open",
    }
    assert back["params"] == small_fit.params  # unrounded
    assert back["config"]["versions"]["numpy"] == np.__version__
    assert len(back["bootstrap"]["theta"]) == 100
    assert "bootstrap" not in small_fit.to_dict(include_draws=False)


def test_roundtrip_through_fit_json(small_fit, tmp_path):
    path = write_json(tmp_path / "fit.json", small_fit.to_dict())
    loaded = load_fit(tmp_path)
    assert isinstance(loaded, FitResult)
    assert loaded.params == small_fit.params and loaded.d_star == small_fit.d_star
    assert loaded.intervals == small_fit.intervals
    assert loaded.shift_interval == small_fit.shift_interval
    assert loaded.verdict == small_fit.verdict
    d = np.array([2.5, 4.0])
    n = np.array([100.0, 1500.0])
    assert loaded.predict(d, n) == pytest.approx(small_fit.predict(d, n), rel=1e-12)
    new = loaded.d_star_at([500, 1500])
    again = small_fit.d_star_at([500, 1500])
    assert new == again and new[0].interval.covers(new[0].value)
    assert path.exists()


def test_every_interval_is_one_type_at_the_fit_level(small_fit):
    level = small_fit.config["confidence_level"]
    intervals = [
        *small_fit.intervals.values(),
        *(e.interval for e in small_fit.d_star),
        small_fit.shift_interval,
    ]
    assert all(type(ci) is ConfidenceInterval for ci in intervals)
    assert {(ci.level, ci.method) for ci in intervals} == {(level, "bootstrap percentile")}
    assert str(intervals[0]) == (
        f"[{intervals[0].low:.4g}, {intervals[0].high:.4g}] (95% bootstrap percentile)"
    )
    e = small_fit.d_star[0]
    assert str(e).startswith(f"d*(n={e.n:g}) = {e.value:.4g} [")


def test_confidence_interval_reproduces_the_stored_intervals(small_fit):
    same = small_fit.confidence_interval(small_fit.config["confidence_level"])
    assert isinstance(same, FitIntervals)
    assert same.params == small_fit.intervals  # exactly, not approximately
    assert same.d_star == small_fit.d_star
    assert same.shift_exponent == small_fit.shift_interval
    assert "95% bootstrap percentile intervals" in str(same)


def test_confidence_interval_widens_with_the_level(small_fit):
    narrow = small_fit.confidence_interval(0.5)
    wide = small_fit.confidence_interval(0.99)
    for k in small_fit.params:
        a, b = narrow.params[k], wide.params[k]
        assert b.low <= a.low and a.high <= b.high and b.width > a.width, k
    for a, b in zip(narrow.d_star, wide.d_star, strict=True):
        assert b.interval.width > a.interval.width
        assert b.interval.low <= a.interval.low and a.interval.high <= b.interval.high
        assert a.value == b.value and a.interval.level == 0.5 and b.interval.level == 0.99
    # the percentile rule, stated independently: the 99% ends are the 0.5% / 99.5% quantiles
    g = np.exp(small_fit.draws.theta[:, list(small_fit.model.param_names).index("g")])
    assert (wide.params["g"].low, wide.params["g"].high) == tuple(np.quantile(g, [0.005, 0.995]))


def test_confidence_interval_refusals(small_fit):
    with pytest.raises(InvalidParameterError, match="confidence_level"):
        small_fit.confidence_interval(1.5)
    no_draws = dataclasses.replace(small_fit, draws=None)
    with pytest.raises(InvalidParameterError, match="needs the bootstrap draws"):
        no_draws.confidence_interval(0.9)


def test_load_fit_reads_version_1(small_fit, tmp_path):
    """A version-1 fit.json (flat low/high intervals) still loads, at the fit's level."""
    obj = json.loads(json.dumps(small_fit.to_dict()))
    obj["format_version"] = 1
    for e in obj["d_star"]:
        ci = e.pop("interval")
        e["low"], e["high"] = ci["low"], ci["high"]
    obj["intervals"] = {
        k: {"low": v["low"], "high": v["high"]} for k, v in obj["intervals"].items()
    }
    sh = obj["shift_exponent"].pop("interval")
    obj["shift_exponent"].update(low=sh["low"], high=sh["high"])
    write_json(tmp_path / "fit.json", obj)
    old = load_fit(tmp_path)
    assert old.d_star == small_fit.d_star and old.intervals == small_fit.intervals
    assert old.shift_interval == small_fit.shift_interval
    obj["format_version"] = 99
    write_json(tmp_path / "fit.json", obj)
    with pytest.raises(
        RunsFileError, match="`format_version` is 99; this version of fits reads 1 and 2"
    ):
        load_fit(tmp_path)


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
