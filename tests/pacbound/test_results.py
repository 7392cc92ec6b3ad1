"""Tests of pacbound._results.BoundResult: immutability, to_dict, records, __str__."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from pacbound import BoundResult, catoni, kl_bound, mcallester


def test_frozen_and_fields() -> None:
    r = kl_bound(0.02, 500.0, 30000, 0.025, union={"sigma grid": 12})
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.value = 0.0  # type: ignore[misc]
    names = [f.name for f in dataclasses.fields(BoundResult)]
    assert names == [
        "name", "value", "emp_risk", "kl", "n", "delta", "complexity",
        "deltas", "union", "grid", "params",
    ]  # fmt: skip
    assert float(r) == r.value


def test_to_dict_is_json_safe_with_stable_keys() -> None:
    r = catoni([0.02, np.nan], [500.0, 5000.0], 30000, 0.025, grid=[1.0, 2.0])
    d = r.to_dict()
    text = json.dumps(d)  # would raise on numpy types or NaN (allow_nan is fine, but None here)
    assert "NaN" not in text
    assert set(d) == {
        "name", "value", "emp_risk", "kl", "n", "delta", "complexity",
        "deltas", "union", "grid", "params",
    }  # fmt: skip
    assert d["value"][1] is None and d["grid"] == [1.0, 2.0] and d["union"] == {"C grid": 2}


def test_records_one_per_element() -> None:
    r = mcallester([0.1, 0.2, 0.3], 100.0, [1000, 2000, 3000], 0.05, union={"g": 2})
    rows = r.records()
    assert len(rows) == 3
    for i, row in enumerate(rows):
        assert row["value"] == r.value[i] and row["n"] == [1000.0, 2000.0, 3000.0][i]
        assert row["kl"] == 100.0 and row["union"] == {"g": 2}
        assert row["deltas"]["g"] == pytest.approx(0.025)
    assert kl_bound(0.1, 10.0, 100, 0.05).records() == [kl_bound(0.1, 10.0, 100, 0.05).to_dict()]


def test_str_is_readable() -> None:
    text = str(catoni(0.02, 500.0, 30000, 0.025, union={"sigma grid": 12}))
    assert text.splitlines()[0].startswith("catoni bound: 0.0")
    assert "union bounds: sigma grid (12), C grid (25)" in text
    assert "delta[total] = 0.025" in text and "grid (25 values)" in text
    arr = str(kl_bound(np.linspace(0.01, 0.3, 50), 100.0, 1000, 0.05))
    assert "array(50,): min" in arr


def test_float_of_an_array_result_raises() -> None:
    with pytest.raises(TypeError, match="no single float"):
        float(kl_bound([0.1, 0.2], 10.0, 100, 0.05))
    assert math.isfinite(float(kl_bound(0.1, 10.0, 100, 0.05)))
