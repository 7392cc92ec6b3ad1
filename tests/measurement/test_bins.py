"""Difficulty bins and the threshold-robustness check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from measurement import Binning, assign_bins, make_bins, threshold_robustness
from measurement._bins import is_score_column, ordered_bin_labels
from pacbound.exceptions import InvalidParameterError


def test_default_tertiles_are_equal_count_and_labelled():
    values = np.arange(1.0, 13.0)
    b = make_bins(values, column="difficulty_length")
    assert b.method == "quantiles" and b.labels == ("easy", "medium", "hard")
    counts = pd.Series(b.assign(values)).value_counts()
    assert counts.to_dict() == {"easy": 4, "medium": 4, "hard": 4}
    np.testing.assert_allclose(b.thresholds, np.quantile(values, [1 / 3, 2 / 3]))
    assert "easy: (-inf" in str(b) and b.to_dict()["labels"] == ["easy", "medium", "hard"]


def test_bins_are_right_closed_and_nan_gets_no_bin():
    b = make_bins([0], thresholds=[1.0, 2.0])
    got = b.assign([1.0, 1.0000001, 2.0, 3.0, np.nan])
    assert list(got.astype(object)) == ["easy", "medium", "medium", "hard", np.nan]
    assert got.ordered


def test_equal_width_and_labels():
    b = make_bins([0.0, 1.0, 10.0], width=5)
    np.testing.assert_allclose(b.thresholds, [2.0, 4.0, 6.0, 8.0])
    assert b.labels == ("very easy", "easy", "medium", "hard", "very hard")
    q4 = make_bins(np.arange(100.0), quantiles=4)
    assert q4.labels == ("q1", "q2", "q3", "q4")
    t4 = make_bins([], thresholds=[1, 2, 3])
    assert t4.labels == ("b1", "b2", "b3", "b4")
    named = make_bins([], thresholds=[5], labels=["short", "long"])
    assert list(named.assign([4, 6]).astype(str)) == ["short", "long"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(quantiles=3, width=3), "are exclusive"),
        (dict(thresholds=[2, 1]), "`thresholds` must be strictly increasing; got"),
        (dict(thresholds=[1, np.inf]), "`thresholds` must be finite"),
        (dict(thresholds=[1], labels=["a", "b", "c"]), "`labels` must have 2 entries"),
        (dict(thresholds=[1], labels=["a", "a"]), "`labels` must be distinct"),
        (dict(quantiles=1), "`quantiles` must be an integer >= 2; got 1"),
        (dict(width=1), "`width` must be an integer >= 2; got 1"),
    ],
)
def test_bad_bin_arguments(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        make_bins(np.arange(10.0), **kwargs)


def test_ties_constant_and_empty_scores():
    with pytest.raises(InvalidParameterError, match="too many ties for 3 equal-count bins"):
        make_bins([1, 1, 1, 1, 1, 2])
    with pytest.raises(InvalidParameterError, match="more than one value"):
        make_bins([2, 2, 2], width=3)
    with pytest.raises(InvalidParameterError, match="at least one scored value"):
        make_bins([np.nan, np.nan])


def test_assign_bins_adds_an_ordered_column():
    table = pd.DataFrame({"difficulty": [5.0, 1.0, 9.0], "x": [1, 2, 3]})
    out = assign_bins(table, make_bins([], column="difficulty", thresholds=[2, 6]))
    assert list(out["bin"].astype(str)) == ["medium", "easy", "hard"]
    assert "bin" not in table.columns  # a copy
    with pytest.raises(InvalidParameterError, match="`by` must be a column of the table"):
        assign_bins(table, make_bins([], column="nope", thresholds=[1]))


def _table():
    """12 examples, two models; the fine-tune's loss peaks in the middle of the score range."""
    score = np.arange(1.0, 13.0)
    base = score / 10
    ft = np.array([0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.2, 0.2, 0.2, 0.2, 0.2])
    return pd.DataFrame(
        {
            "difficulty": np.concatenate([score, score]),
            "model": ["base"] * 12 + ["finetuned"] * 12,
            "nll_mean": np.concatenate([base, ft]),
        }
    )


def test_robustness_reports_sizes_moves_and_changed_conclusions():
    table = _table()
    b = make_bins([], column="difficulty", thresholds=[4.0, 8.0])
    rep = threshold_robustness(table, b, value_columns=["nll_mean"], group_column="model")
    assert rep.shifts == (-0.2, -0.1, 0.0, 0.1, 0.2)
    sizes = rep.sizes.pivot(index="shift", columns="bin", values="n")
    assert sizes.loc[0.0].to_dict() == {"easy": 8, "medium": 8, "hard": 8}  # 2 models x 4
    # +20%: thresholds 4.8, 9.6 -> easy 1-4, medium 5-9, hard 10-12
    assert sizes.loc[0.2].to_dict() == {"easy": 8, "medium": 10, "hard": 6}
    assert rep.moved[0.2] == 2  # score 9, for each model
    assert rep.moved[0.1] == 0  # 4.4 and 8.8 move no integer score
    base = rep.conclusions[0.0]
    assert base["nll_mean [base] rises with difficulty"] is True
    assert base["nll_mean [finetuned] highest bin"] == "medium"
    assert base["nll_mean lowest group in easy"] == "finetuned"
    # -20%: thresholds 3.2, 6.4: the fine-tune's medium bin (4-6) still peaks, base still rises
    assert rep.conclusions[-0.2]["nll_mean [finetuned] highest bin"] == "medium"
    changes = rep.changes
    assert set(changes) == {-0.2, -0.1, 0.1, 0.2}
    assert changes[0.1] == []
    d = rep.to_dict()
    assert d["moved"]["+0.2"] == 2 and "robust" in d
    text = str(rep)
    assert "bin sizes by shift" in text and "+20%" in text


def test_robustness_detects_a_flipped_conclusion():
    # the fine-tune is worse than the base in `medium` only for scores 7-8; moving the
    # upper threshold down by 20% pushes them to `hard` and flips the comparison there
    score = np.arange(1.0, 13.0)
    base = np.full(12, 0.5)
    ft = np.where(score <= 6, 0.3, np.where(score <= 8, 1.5, 0.45))
    table = pd.DataFrame(
        {
            "difficulty": np.concatenate([score, score]),
            "model": ["base"] * 12 + ["ft"] * 12,
            "nll_mean": np.concatenate([base, ft]),
        }
    )
    b = make_bins([], column="difficulty", thresholds=[4.0, 8.0])
    rep = threshold_robustness(table, b, value_columns=["nll_mean"], group_column="model")
    assert rep.conclusions[0.0]["nll_mean lowest group in hard"] == "ft"
    assert rep.conclusions[-0.2]["nll_mean lowest group in hard"] == "base"
    assert any("lowest group in hard" in c for c in rep.changes[-0.2])
    assert rep.robust is False
    steady = threshold_robustness(table[table.model == "base"], b, value_columns=["nll_mean"])
    assert steady.robust is True and "robust: yes" in str(steady)


def test_robustness_without_values_and_bad_columns():
    b = make_bins([], column="difficulty", thresholds=[0.0, 5.0])
    table = pd.DataFrame({"difficulty": [-1.0, 0.5, 3.0, 7.0]})
    rep = threshold_robustness(table, b, shifts=[0.5])
    # a zero threshold moves by shift x the score range (8): 0 -> 4
    moved = rep.sizes[rep.sizes["shift"] == 0.5]["thresholds"].iloc[0]
    assert moved == [4.0, 7.5]
    assert rep.conclusions[0.0] == {} and rep.robust
    with pytest.raises(InvalidParameterError, match="`nll_mean` must be a column"):
        threshold_robustness(table, b, value_columns=["nll_mean"])


def test_binning_validates_itself():
    with pytest.raises(InvalidParameterError, match="strictly increasing"):
        Binning("d", "thresholds", (1.0, 1.0), ("a", "b", "c"))


def test_score_columns_and_ordered_bin_labels():
    assert is_score_column(pd.Series(np.linspace(0, 1, 11)))
    assert not is_score_column(pd.Series(np.arange(10)))  # 10 values: labels, not a score
    assert not is_score_column(pd.Series(["1", "x"] * 6))
    assert not is_score_column(pd.Series(pd.Categorical(np.linspace(0, 1, 11))))
    named = ordered_bin_labels(pd.Series(["hard", "easy"]), pd.Series(["hard", "easy", "medium"]))
    assert list(named.categories) == ["easy", "medium", "hard"] and named.ordered
    natural = ordered_bin_labels(pd.Series(["bin10", "bin2"]), pd.Series(["bin10", "bin2", "bin1"]))
    assert list(natural.categories) == ["bin1", "bin2", "bin10"]
    given = pd.Series(pd.Categorical(["b", "a"], categories=["b", "a"]))
    assert list(ordered_bin_labels(pd.Series(["a"]), given).categories) == ["b", "a"]
