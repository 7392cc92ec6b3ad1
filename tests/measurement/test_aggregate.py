"""Per-bin aggregates with bootstrap intervals, and the generalization/extrapolation tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from measurement import (
    BinTable,
    GapTable,
    bin_aggregates,
    example_losses,
    extrapolation_gaps,
    generalization_gaps,
    load_examples,
    make_bins,
    score_difficulty,
)
from pacbound.exceptions import InvalidParameterError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")

LABELS = ["easy", "medium", "hard"]


def synthetic(seed=0, n=60):
    """Two models x n examples; loss rises with the bin, the fine-tune fits its training rows."""
    rng = np.random.default_rng(seed)
    bins = pd.Categorical(rng.choice(LABELS, n), categories=LABELS, ordered=True)
    split = np.where(rng.random(n) < 0.5, "train", "test")
    level = pd.Series(bins).cat.codes.to_numpy()
    tokens = rng.integers(5, 30, n)
    rows = []
    for model, fit in (("base", 0.0), ("finetuned", 0.4)):
        mean = 1.0 + 0.5 * level - fit * (split == "train")
        nll_mean = mean + 0.1 * rng.standard_normal(n)
        rows.append(
            pd.DataFrame(
                {
                    "example_id": np.arange(n),
                    "model": model,
                    "bin": bins,
                    "split": split,
                    "n_tokens": tokens,
                    "nll_sum": nll_mean * tokens,
                    "nll_mean": nll_mean,
                    "correct": rng.random(n) < 0.5,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_bin_means_match_groupby_and_intervals_cover_them():
    t = synthetic()
    res = bin_aggregates(t, metrics=["nll_mean", "token_nll", "correct"], n_resamples=500)
    assert isinstance(res, BinTable)
    tab = res.table
    assert len(tab) == 2 * 3 * 3
    for (model, lab), sub in t.groupby(["model", "bin"], observed=True):
        row = tab[(tab.model == model) & (tab.bin == lab) & (tab.metric == "nll_mean")].iloc[0]
        assert row["mean"] == pytest.approx(sub["nll_mean"].mean())
        assert row["n"] == len(sub)
        assert row["ci_low"] < row["mean"] < row["ci_high"]
        tok = tab[(tab.model == model) & (tab.bin == lab) & (tab.metric == "token_nll")].iloc[0]
        assert tok["mean"] == pytest.approx(sub["nll_sum"].sum() / sub["n_tokens"].sum())
    assert list(dict.fromkeys(tab["bin"])) == LABELS  # bin order kept, easiest first
    text = str(res)
    assert "base" in text and "finetuned" in text and "[token_nll]" in text


def test_bootstrap_interval_has_the_normal_width_and_is_seeded():
    rng = np.random.default_rng(1)
    n = 400
    t = pd.DataFrame({"bin": "all", "nll_mean": rng.normal(2.0, 1.0, n)})
    a = bin_aggregates(t, metrics=["nll_mean"], n_resamples=4000, rng=7).table.iloc[0]
    half = 1.96 * t["nll_mean"].std() / np.sqrt(n)
    assert (a["ci_high"] - a["ci_low"]) / 2 == pytest.approx(half, rel=0.1)
    b = bin_aggregates(t, metrics=["nll_mean"], n_resamples=4000, rng=7).table.iloc[0]
    assert a["ci_low"] == b["ci_low"]
    wide = bin_aggregates(t, metrics=["nll_mean"], confidence_level=0.99, rng=7).table.iloc[0]
    assert wide["ci_high"] - wide["ci_low"] > a["ci_high"] - a["ci_low"]


def test_generalization_gap_is_held_out_minus_train_per_model():
    t = synthetic(n=90)
    gap = generalization_gaps(t, n_resamples=500)
    assert isinstance(gap, GapTable) and gap.kind == "generalization"
    tab = gap.table
    for (model, lab), sub in t.groupby(["model", "bin"], observed=True):
        row = tab[(tab.model == model) & (tab.bin == lab)].iloc[0]
        expect = (
            sub[sub.split == "test"]["nll_mean"].mean()
            - sub[sub.split == "train"]["nll_mean"].mean()
        )
        assert row["gap"] == pytest.approx(expect)
        assert row["ci_low"] <= row["gap"] <= row["ci_high"]
    ft = tab[tab.model == "finetuned"]["gap"]
    base = tab[tab.model == "base"]["gap"]
    assert (ft > 0.25).all() and (base.abs() < 0.15).all()  # the fine-tune fits its subset
    assert "held-out minus training subset" in str(gap)


def test_extrapolation_gap_is_each_harder_bin_minus_the_trained_bin():
    t = synthetic(n=90)
    gap = extrapolation_gaps(t, trained_bin="easy", split_column="split", n_resamples=300)
    tab = gap.table
    assert list(tab[tab.model == "base"]["bin"]) == ["medium", "hard"]
    held = t[t.split != "train"]
    for model in ("base", "finetuned"):
        sub = held[held.model == model]
        ref = sub[sub.bin == "easy"]["nll_mean"].mean()
        for lab, step in (("medium", 0.5), ("hard", 1.0)):
            row = tab[(tab.model == model) & (tab.bin == lab)].iloc[0]
            assert row["gap"] == pytest.approx(sub[sub.bin == lab]["nll_mean"].mean() - ref)
            assert row["gap"] == pytest.approx(step, abs=0.15)
    last = extrapolation_gaps(t, trained_bin="hard", n_resamples=50)
    assert last.table.empty and "hardest bin" in last.notes[0]
    assert "(no rows)" in str(last)


def test_bad_inputs():
    t = synthetic()
    with pytest.raises(InvalidParameterError, match="`trained_bin` must be one of"):
        extrapolation_gaps(t, trained_bin="trivial")
    with pytest.raises(InvalidParameterError, match="`train_value` must occur in column 'split'"):
        generalization_gaps(t, train_value="fit")
    with pytest.raises(InvalidParameterError, match="`difficulty_bin` must be a column"):
        bin_aggregates(t, bin_column="difficulty_bin")
    with pytest.raises(InvalidParameterError, match=r"`confidence_level` must be in \(0, 1\)"):
        bin_aggregates(t, confidence_level=1.0)
    with pytest.raises(InvalidParameterError, match="`n_resamples` must be an integer >= 1"):
        generalization_gaps(t, n_resamples=0)


def test_real_losses_of_base_and_finetune_side_by_side(data_jsonl, llama_dir, memorised_dir):
    scores = score_difficulty(data_jsonl, "length", model=llama_dir)
    bins = make_bins(scores.values, column=scores.column)
    ex = scores.examples.with_columns(bin=bins.assign(scores.values))
    frames = [
        example_losses(path, ex, label=label, carry=["bin", "split"]).table
        for label, path in (("base", llama_dir), ("finetuned", memorised_dir))
    ]
    losses = pd.concat(frames, ignore_index=True)
    gen = generalization_gaps(losses, n_resamples=200)
    ft = gen.table[gen.table.model == "finetuned"]
    # the memorised fine-tune has a large positive generalization gap in every bin it saw
    assert (ft.dropna(subset=["gap"])["gap"] > 1.0).all()
    agg = bin_aggregates(losses, n_resamples=200)
    assert set(agg.table["model"]) == {"base", "finetuned"}
    assert len(load_examples(data_jsonl)) == len(frames[0])
