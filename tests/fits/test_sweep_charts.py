"""Charts of a sweep's runs table and of the theory terms."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from fits import save_chart, sweep_charts


def _runs():
    rows = []
    rng = np.random.default_rng(0)
    for mode, n, d, seed in itertools.product(["epochs", "steps"], [64, 256], [2, 6], [0, 1]):
        row = {
            "budget_mode": mode,
            "n": n,
            "difficulty": float(d),
            "seed": seed,
            "test_acc": rng.random(),
            "test_acc_inrange": rng.random(),
            "test_acc_extrap": rng.random(),
            "sq_dist": 1 + 10 * rng.random(),
        }
        row.update({f"test_acc_ops{k}": rng.random() for k in range(1, 9)})
        rows.append(row)
    return pd.DataFrame(rows)


def test_charts_keep_budget_modes_apart_and_render(tmp_path):
    charts = sweep_charts(_runs())
    assert set(charts) == {"slices", "weight_distance", "per_op"}
    spec = charts["per_op"].to_dict()
    assert spec["facet"]["row"]["field"] == "budget_mode"
    assert charts["weight_distance"].to_dict()["encoding"]["strokeDash"]["field"] == "budget_mode"
    files = save_chart(charts["slices"], tmp_path / "slices")
    assert files["png"].stat().st_size > 1000 and files["svg"].is_file()
