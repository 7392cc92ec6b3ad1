"""Sweep tasks: the synthetic task's difficulties and slices, a dataset with a difficulty column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fits import SpecError, SweepSpec
from fits.sweep._tasks import DatasetTask, SyntheticTask, make_task
from pacbound.exceptions import InputFileError

pytestmark = pytest.mark.usefixtures("sweep_env")


def test_synthetic_difficulties_tv_and_slices():
    spec = SweepSpec.from_dict(
        {"difficulty": {"centers": [2, 6]}, "budget": {"n": [8]}, "task": {"test_per_op": 3}}
    )
    task = make_task(spec)
    assert isinstance(task, SyntheticTask)
    d2, d6 = task.difficulties()
    assert (d2.label, d2.value) == ("mix2", 2.0)
    assert d2.info["tv_test"] == pytest.approx(0.4470, abs=5e-4)
    small, big = task.train_records(d6, 5, 0), task.train_records(d6, 20, 0)
    assert small == big[:5]  # nested budgets
    assert task.train_records(d6, 5, 1) != small
    test = task.test_records()
    assert len(test) == 8 * 3
    sl = task.slices(test, d2)
    assert sl["inrange"].sum() == 12 and sl["extrap"].sum() == 12 and sl["ops8"].sum() == 3
    bins = SweepSpec.from_dict(
        {"difficulty": {"kind": "bins", "bins": ["1-2", "7-8", 5]}, "budget": {"n": [8]}}
    )
    labels = [(d.label, d.value) for d in make_task(bins).difficulties()]
    assert labels == [("ops1-2", 1.5), ("ops7-8", 7.5), ("ops5", 5.0)]


def _dataset(tmp_path, n=60):
    rng = np.random.default_rng(0)
    rows = [
        {
            "prompt": f"q{i}: {a} + {b} =",
            "completion": f" {a + b}",
            "answer": int(a + b),
            "difficulty": float(d),
        }
        for i, (a, b, d) in enumerate(
            zip(rng.integers(0, 50, n), rng.integers(0, 50, n), rng.integers(1, 10, n), strict=True)
        )
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _dspec(path, **difficulty):
    return SweepSpec.from_dict(
        {
            "base": {"kind": "path", "path": str(path.parent)},
            "task": {
                "kind": "dataset",
                "train": str(path),
                "answer_column": "answer",
                "test_fraction": 0.2,
            },
            "difficulty": {"kind": "bins", **difficulty},
            "budget": {"n": [4]},
        },
        "spec.toml",
    )


def test_dataset_quantile_bins_subsets_and_slices(tmp_path):
    task = make_task(_dspec(_dataset(tmp_path), quantiles=3))
    assert isinstance(task, DatasetTask)
    assert len(task.test) == 12 and len(task.train) == 48
    diffs = task.difficulties()
    assert [d.label for d in diffs] == ["bin1", "bin2", "bin3"]
    assert diffs[0].value < diffs[1].value < diffs[2].value
    sub = task.train_records(diffs[1], 4, seed=0)
    assert all(diffs[1].lo <= r.difficulty < diffs[1].hi for r in sub)
    assert task.train_records(diffs[1], 2, seed=0) == sub[:2]
    assert task.answer_fn("so the answer is 42.") == "42"
    assert task.answer_fn("no number") is None
    assert task.answer_fn("x = 7.0") == "7" and task.answer_fn("x = 2.5") == "2.5"
    assert all(r.answer == str(int(r.answer)) for r in sub)  # integer answers stay integers
    test = task.test_records()
    sl = task.slices(test, diffs[0])
    assert sl["test"].sum() == len(test)
    assert (sl["bin1"] | sl["bin2"] | sl["bin3"]).all()
    assert not (sl["inrange"] & sl["extrap"]).any()
    with pytest.raises(SpecError, match=r"`budget.n` = 100 exceeds the \d+ training rows"):
        task.train_records(diffs[0], 100, 0)


def test_dataset_errors_name_file_row_and_column(tmp_path):
    path = _dataset(tmp_path)
    frame = pd.read_json(path, lines=True)
    frame["difficulty"] = frame["difficulty"].astype(object)
    frame.loc[7, "difficulty"] = "hard"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    with pytest.raises(
        InputFileError, match=r"bad.csv: row 7, column 'difficulty' must be a finite"
    ):
        make_task(_dspec(bad, quantiles=2))
    frame.drop(columns=["completion"]).to_csv(bad, index=False)
    with pytest.raises(
        InputFileError, match=r"has no column 'completion' \(task.completion_column\)"
    ):
        make_task(_dspec(bad, quantiles=2))
    with pytest.raises(SpecError, match=r"difficulty bin \[100, 200\) holds no training rows"):
        make_task(_dspec(path, bins=[[0, 5], [100, 200]]))
    with pytest.raises(SpecError, match="must be \\[lo, hi\\) pairs"):
        make_task(_dspec(path, bins=["1-2"]))
    with pytest.raises(InputFileError, match="does not exist"):
        make_task(_dspec(tmp_path / "none.jsonl", quantiles=2))
