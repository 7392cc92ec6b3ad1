"""Threshold robustness from a per-example table of the runs' training examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fits import InsufficientDataError, RunsFileError, threshold_robustness
from tests.fits._sim import simulate_runs


def _examples(runs, rng, per_run=40):
    """Each run trained on examples whose score lies in its bin: level d covers [d - 0.5, d + 0.5)."""
    rows = []
    for run_id, d in zip(runs["run_id"], runs["difficulty"], strict=True):
        for s in rng.uniform(d - 0.5, d + 0.5, per_run):
            rows.append({"run_id": run_id, "score": s})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def result():
    runs = simulate_runs(5, noise=0.005)
    ex = _examples(runs, np.random.default_rng(0))
    return threshold_robustness(
        runs, ex, thresholds=[2.5, 3.5, 4.5, 5.5], n_resamples=30, train_model="flat"
    )


def test_table_and_verdict(result):
    table = result.table
    assert set(table["shift"]) == {-0.2, -0.1, 0.0, 0.1, 0.2} and (table["status"] == "ok").all()
    assert len(table) == 5 * 4
    base = table[table["shift"] == 0.0]
    assert base["change"].abs().max() == 0.0 and not base["bin_changed"].any()
    # at shift 0 the bins reproduce the levels: each level's difficulty is its bin's median score
    lev0 = result.levels[result.levels["shift"] == 0.0]
    assert lev0["difficulty"].to_numpy() == pytest.approx(lev0["level"].to_numpy(), abs=0.06)
    moved = table[table["shift"] == 0.2]
    assert (moved["change"].abs() > 0).any()
    assert result.max_change == pytest.approx(table["change"].abs().max())
    assert result.verdict.startswith(
        "Shifting the bin thresholds by -20%, -10%, +10%, +20% moved d*(n) by at most"
    )
    assert "threshold robustness" in str(result) and "<table" in result.summary_html()
    assert result.to_dict()["thresholds"] == [2.5, 3.5, 4.5, 5.5]


def test_default_thresholds_are_quantiles():
    runs = simulate_runs(5, noise=0.005)
    ex = _examples(runs, np.random.default_rng(1), per_run=10)
    res = threshold_robustness(runs, ex, shifts=(0.1,), n_resamples=0, train_model="flat")
    assert len(res.thresholds) == 4 and set(res.table["shift"]) == {0.0, 0.1}
    assert res.thresholds == pytest.approx(np.quantile(ex["score"], [0.2, 0.4, 0.6, 0.8]))


def test_input_errors():
    runs = simulate_runs(5)
    ex = _examples(runs, np.random.default_rng(0), per_run=2)
    with pytest.raises(RunsFileError, match="field `score` is missing"):
        threshold_robustness(runs, ex.rename(columns={"score": "len"}))
    with pytest.raises(RunsFileError, match=r"run_id \['ghost'\] are not runs"):
        threshold_robustness(
            runs, pd.concat([ex, pd.DataFrame({"run_id": ["ghost"], "score": [1.0]})])
        )
    with pytest.raises(RunsFileError, match="no training examples for runs"):
        threshold_robustness(runs, ex.iloc[2:])
    with pytest.raises(InsufficientDataError, match="`thresholds` must be > 0"):
        threshold_robustness(runs, ex, thresholds=[-1.0, 3.0])
