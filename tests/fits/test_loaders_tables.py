"""Plain run tables and W&B CSV exports."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from fits import (
    RUN_COLUMNS,
    MetadataConflictError,
    RunsFileError,
    TruncatedExportWarning,
    load_runs,
)

PATTERN = "d={d}_n={n}_seed={seed}"


def _wandb_frame(runs: dict[str, list[float]], metric: str, steps: list[int]) -> pd.DataFrame:
    """The layout of a W&B panel export: Step, '<run> - <metric>' and its __MIN/__MAX."""
    frame = {"Step": steps}
    for run, values in runs.items():
        frame[f"{run} - {metric}"] = values
        frame[f"{run} - {metric}__MIN"] = [v - 0.01 if v == v else v for v in values]
        frame[f"{run} - {metric}__MAX"] = [v + 0.01 if v == v else v for v in values]
    return pd.DataFrame(frame)


def test_canonical_csv_loads_without_options(tmp_path):
    frame = pd.DataFrame(
        {
            "run_id": ["a", "b"],
            "difficulty": [1, 2],
            "n": [10, 10],
            "seed": [0, 0],
            "train_loss": [0.1, 0.2],
            "test_loss": [0.5, 0.6],
            "kl": [3.0, 4.0],
            "note": ["x", "y"],
        }
    )
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    table = load_runs(path)
    assert list(table.columns[: len(RUN_COLUMNS)]) == list(RUN_COLUMNS)
    assert list(table["kl"]) == [3.0, 4.0] and list(table["note"]) == ["x", "y"]
    assert table["source"].eq("table").all() and table["n"].dtype.name == "Int64"
    jsonl = tmp_path / "runs.jsonl"
    frame.to_json(jsonl, orient="records", lines=True)
    assert load_runs(jsonl)["test_loss"].tolist() == [0.5, 0.6]
    parquet = tmp_path / "runs.parquet"
    frame.to_parquet(parquet)
    assert load_runs(parquet)["difficulty"].tolist() == [1.0, 2.0]


def test_column_mapping_and_errors(tmp_path):
    frame = pd.DataFrame({"name": ["a"], "level": [3], "size": [64], "val": [0.7], "tr": [0.2]})
    path = tmp_path / "mine.csv"
    frame.to_csv(path, index=False)
    mapping = {
        "run_id": "name",
        "difficulty": "level",
        "n": "size",
        "test_loss": "val",
        "train_loss": "tr",
    }
    row = load_runs(path, columns=mapping).iloc[0]
    assert (row["run_id"], row["difficulty"], row["n"], row["test_loss"]) == ("a", 3.0, 64, 0.7)
    with pytest.raises(RunsFileError, match=r"mine.csv: field `difficulty` is missing"):
        load_runs(path)
    with pytest.raises(RunsFileError, match=r"mine.csv: `columns` names \['nope'\]"):
        load_runs(path, columns={"test_loss": "nope"})
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"difficulty": [1], "n": [2.5]}).to_csv(bad, index=False)
    with pytest.raises(
        RunsFileError, match=r"bad.csv \(row 1\).*field `n` must be an integer; got 2.5"
    ):
        load_runs(bad)


def test_wandb_export_with_min_max_columns(tmp_path):
    steps = [10, 20, 30, 40]
    runs = {"d=2_n=64_seed=0": [1.0, 0.9, 0.8, 0.7], "d=4_n=64_seed=0": [1.2, 1.1, np.nan, np.nan]}
    test = _wandb_frame(runs, "eval/test_loss", steps)
    train = _wandb_frame({k: [0.5, 0.4, 0.3, 0.2] for k in runs}, "eval/train_loss", steps)
    avg = _wandb_frame({k: [0.6, 0.6, 0.6, 0.6] for k in runs}, "train/train_loss", steps)
    for name, frame in (("test", test), ("train", train), ("avg", avg)):
        frame.to_csv(tmp_path / f"wandb_{name}.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = load_runs(tmp_path, pattern=PATTERN)
    assert table["source"].eq("wandb").all() and len(table) == 2
    first = table.set_index("run_id").loc["d=2_n=64_seed=0"]
    second = table.set_index("run_id").loc["d=4_n=64_seed=0"]
    assert first["test_loss"] == 0.7 and second["test_loss"] == 1.1  # last non-empty row
    assert first["train_loss"] == 0.2 and first["train_loss_avg"] == 0.6


def test_wandb_sampled_export_warns(tmp_path):
    steps = [0, 10, 25, 31, 60]
    frame = _wandb_frame({"d=1_n=8_seed=0": [1.0, 0.9, 0.8, 0.7, 0.6]}, "eval/test_loss", steps)
    frame["d=1_n=8_seed=0 - eval/train_loss"] = 0.1
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    with pytest.warns(TruncatedExportWarning, match="export.csv: this W&B export looks sampled"):
        load_runs(path, pattern=PATTERN)
    capped = _wandb_frame(
        {"d=1_n=8_seed=0": list(np.linspace(1, 0.5, 500))}, "eval/test_loss", list(range(500))
    )
    capped.to_csv(path, index=False)
    with pytest.warns(TruncatedExportWarning, match="exactly 500 rows"):
        load_runs(path, pattern=PATTERN)


def test_wandb_errors(tmp_path):
    frame = _wandb_frame({"d=1_n=8_seed=0": [1.0, 0.9]}, "eval/test_loss", [1, 2])
    frame["d=1_n=8_seed=0 - eval/test_loss"] = ["1.0", "oops"]
    path = tmp_path / "w.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        RunsFileError,
        match=r"w.csv: row 2, column 'd=1_n=8_seed=0 - eval/test_loss' is not a number",
    ):
        load_runs(path, pattern=PATTERN)
    a = _wandb_frame({"d=1_n=8_seed=0": [1.0, 0.9]}, "eval/test_loss", [1, 2])
    b = _wandb_frame({"d=1_n=8_seed=0": [1.0, 0.8]}, "eval/test_loss", [1, 2])
    a.to_csv(tmp_path / "w.csv", index=False)
    b.to_csv(tmp_path / "w2.csv", index=False)
    with pytest.raises(
        MetadataConflictError, match=r"metric `eval/test_loss` of run 'd=1_n=8_seed=0'"
    ):
        load_runs([tmp_path / "w.csv", tmp_path / "w2.csv"], pattern=PATTERN)


def test_unreadable_table(tmp_path):
    path = tmp_path / "runs.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(RunsFileError, match=r"runs.parquet: not a readable PARQUET table"):
        load_runs(path)
    with pytest.raises(RunsFileError, match=r"nothing.csv: no such file or folder"):
        load_runs(tmp_path / "nothing.csv")
