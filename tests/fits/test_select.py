"""Choosing N examples at the predicted d*(N) from a scored dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fits import RunsFileError, select_examples
from pacbound.exceptions import InvalidParameterError
from pacbound.support import write_table


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"example_id": np.arange(2000), "score": rng.uniform(1.0, 7.0, 2000)})


def test_nearest_scores(small_fit, pool):
    res = select_examples(pool, 300, small_fit, column="score", seed=1)
    target = small_fit.d_star_at([300])[0].value
    assert len(res.selected) == 300 and res.d_star.value == pytest.approx(target)
    dist = np.abs(res.selected["score"] - target)
    others = np.abs(
        pool.loc[~pool["example_id"].isin(res.selected["example_id"]), "score"] - target
    )
    assert dist.max() <= others.min()
    assert res.mean_difficulty == pytest.approx(target, abs=0.1)
    again = select_examples(pool, 300, small_fit, column="score", seed=1)
    assert again.selected.equals(res.selected)
    assert "selected 300 examples" in str(res) and res.to_dict()["n_selected"] == 300


def test_mixture_of_bracketing_levels(small_fit, pool):
    res = select_examples(pool, 400, small_fit, column="score", mode="mixture", seed=2)
    target = res.d_star.value
    lo = max(v for v in small_fit.data.d_levels if v <= target)
    hi = min(v for v in small_fit.data.d_levels if v > target)
    lam = (target - lo) / (hi - lo)
    assert res.counts == {f"{lo:g}": 400 - round(400 * lam), f"{hi:g}": round(400 * lam)}
    other = select_examples(pool, 400, small_fit, column="score", mode="mixture", seed=3)
    assert not other.selected["example_id"].equals(res.selected["example_id"])


def test_bin_labels():
    from fits import fit_tradeoff
    from tests.fits._sim import simulate_runs

    runs = simulate_runs(0)
    runs["difficulty_label"] = runs["difficulty"].map(lambda d: f"ops{d:g}")
    fit = fit_tradeoff(runs, n_resamples=0, cv=False, baselines=False)
    labels = {f"ops{d:g}": d for d in fit.data.d_levels}
    rows = pd.DataFrame({"bin": np.repeat(list(labels), 50), "text": "x"})
    res = select_examples(rows, 80, fit, seed=0)
    nearest = min(labels, key=lambda k: abs(labels[k] - res.d_star.value))
    assert res.column == "bin" and res.counts[nearest] == 50 and sum(res.counts.values()) == 80
    assert any("only 50 examples" in w for w in res.warnings)
    rows.loc[0, "bin"] = "impossible"
    with pytest.raises(
        RunsFileError, match=r"labels \['impossible'\] that are not difficulty labels"
    ):
        select_examples(rows, 10, fit)


def test_edges_and_errors(small_fit, pool, tmp_path):
    big = select_examples(pool, 30, small_fit, column="score")
    assert any("outside the fitted budgets" in w for w in big.warnings)
    with pytest.raises(
        InvalidParameterError, match="`budget` must be at most the dataset size 2000"
    ):
        select_examples(pool, 5000, small_fit, column="score")
    with pytest.raises(RunsFileError, match="no difficulty column"):
        select_examples(pool.rename(columns={"score": "s"}), 10, small_fit)
    with pytest.raises(InvalidParameterError, match="`mode` must be one of"):
        select_examples(pool, 10, small_fit, mode="random")
    out = write_table(big.selected, tmp_path / "sel.jsonl")
    assert len(pd.read_json(out, lines=True)) == 30
    with pytest.raises(InvalidParameterError, match=r"sel.xlsx: a table file must end in"):
        write_table(big.selected, tmp_path / "sel.xlsx")
