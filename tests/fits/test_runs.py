"""The runs table: dispatch, metric names, metadata sources, labels and bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fits import MetadataConflictError, RunsFileError, load_runs, metrics_to_columns
from pacbound.exceptions import InvalidParameterError


def test_metric_names_map_to_canonical_columns():
    cols = metrics_to_columns(
        {
            "eval_train_loss": 0.1,
            "eval_test_loss": 0.5,
            "eval_test_accuracy": 0.7,
            "eval_ops3_loss": 0.9,
            "eval_in-range_accuracy": 0.8,
            "eval_loss": 0.55,
            "train_loss": 0.4,
            "loss": 0.2,
            "eval_mean_token_accuracy": 0.6,
            "num_tokens": 1000.0,
            "eval_train_subset_loss": 0.11,
            "eval_runtime": 1.0,
        }
    )
    assert cols["train_loss"] in (0.1, 0.11)  # both name the training subset
    assert cols["test_loss"] == 0.5 and cols["test_acc"] == 0.7
    assert cols["test_loss_ops3"] == 0.9 and cols["test_acc_in_range"] == 0.8
    assert cols["test_loss_eval"] == 0.55  # an unnamed eval set when a named test set exists
    assert cols["train_loss_avg"] == 0.4 and cols["train_loss_logged"] == 0.2
    assert cols["test_token_acc"] == 0.6 and cols["tokens_seen"] == 1000.0
    assert "eval_runtime" not in cols and "runtime" not in " ".join(cols)
    assert metrics_to_columns({"eval_loss": 0.3})["test_loss"] == 0.3
    assert metrics_to_columns({"eval/test_loss": 0.3, "train/loss": 1.0}) == {
        "test_loss": 0.3,
        "train_loss_logged": 1.0,
    }
    assert metrics_to_columns({"eval_heldout_loss": 1.0}, test_slice="heldout") == {
        "test_loss": 1.0
    }


def test_dataframe_input_and_sorting():
    frame = pd.DataFrame(
        {
            "run_id": ["b", "a"],
            "difficulty": [2, 1],
            "n": [20, 10],
            "train_loss": [0.1, 0.2],
            "test_loss": [0.3, 0.4],
        }
    )
    table = load_runs(frame)
    assert list(table["run_id"]) == ["a", "b"]
    assert table["path"].str.startswith("<DataFrame>").all()


def test_difficulty_labels(tmp_path):
    frame = pd.DataFrame(
        {"run_id": ["a", "b"], "difficulty_label": ["easy", "hard"], "n": [10, 10]}
    )
    with pytest.raises(RunsFileError, match=r"field `difficulty` of run 'a' is missing"):
        load_runs(frame)
    table = load_runs(frame, difficulty_values={"easy": 1, "hard": 3})
    assert list(table["difficulty"]) == [1.0, 3.0] and list(table["difficulty_label"]) == [
        "easy",
        "hard",
    ]
    with pytest.raises(
        RunsFileError, match=r"difficulty label 'hard' .* not in `difficulty_values`"
    ):
        load_runs(frame, difficulty_values={"easy": 1})
    frame["difficulty"] = [1.0, 2.0]
    with pytest.raises(MetadataConflictError, match=r"`difficulty_values` maps 'hard' to 3.0"):
        load_runs(frame, difficulty_values={"easy": 1, "hard": 3})


def test_metadata_table_and_conflicts(tmp_path):
    frame = pd.DataFrame({"run_id": ["r1"], "difficulty": [2.0], "n": [10], "test_loss": [0.3]})
    meta = pd.DataFrame({"run_id": ["r1"], "seed": [4], "base_model": ["smol"]})
    row = load_runs(frame, metadata=meta).iloc[0]
    assert row["seed"] == 4 and row["base_model"] == "smol"
    path = tmp_path / "meta.csv"
    pd.DataFrame({"run_id": ["r1"], "n": [99]}).to_csv(path, index=False)
    with pytest.raises(
        MetadataConflictError,
        match=r"field `n` of run 'r1' is 10 in columns of <DataFrame> but 99 in metadata table",
    ):
        load_runs(frame, metadata=path)
    pd.DataFrame({"name": ["r1"]}).to_csv(path, index=False)
    with pytest.raises(RunsFileError, match=r"meta.csv: field `run_id` is missing"):
        load_runs(frame, metadata=path)


def test_duplicate_run_ids_and_bad_arguments(tmp_path):
    frame = pd.DataFrame({"run_id": ["a", "a"], "difficulty": [1, 2], "n": [10, 10]})
    with pytest.raises(RunsFileError, match="run ids must be unique"):
        load_runs(frame)
    with pytest.raises(InvalidParameterError, match="`format` must be one of"):
        load_runs(frame, format="xml")
    with pytest.raises(InvalidParameterError, match="`sources` must name at least one"):
        load_runs([])
    with pytest.raises(InvalidParameterError, match="`pattern` must contain placeholders"):
        load_runs(frame, pattern="plain")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunsFileError, match="empty: no runs found"):
        load_runs(tmp_path / "empty")


def test_budget_must_be_positive():
    frame = pd.DataFrame({"run_id": ["a"], "difficulty": [1], "n": [0]})
    with pytest.raises(RunsFileError, match=r"field `n` must be an integer >= 1; got 0"):
        load_runs(frame)


def test_all_results_file_path_reads_its_folder(tmp_path):
    run = tmp_path / "d=2_n=8_seed=0"
    run.mkdir()
    (run / "all_results.json").write_text(
        json.dumps({"eval_test_loss": 1.0, "eval_train_loss": 0.5})
    )
    table = load_runs(run / "all_results.json", pattern="d={d}_n={n}_seed={seed}")
    assert table.loc[0, "test_loss"] == 1.0
