"""W&B CSV exports beyond the ``Step`` chart: any x-axis column, and the runs-table export."""

from __future__ import annotations

import pandas as pd
import pytest

from fits import load_runs
from fits.exceptions import RunsFileError
from fits.runs._tables import sniff_wandb_csv

PATTERN = "d={d}_n={n}_seed={seed}"


def test_chart_export_with_the_hf_global_step_axis(tmp_path):
    path = tmp_path / "chart.csv"
    frame = pd.DataFrame(
        {
            "train/global_step": [10, 20, 30],
            "d=2_n=64_seed=0 - eval/test_loss": [1.0, 0.9, 0.8],
            "d=2_n=64_seed=0 - eval/test_loss__MIN": [1.0, 0.9, 0.8],
            "d=2_n=64_seed=0 - eval/test_loss__MAX": [1.0, 0.9, 0.8],
            "d=2_n=64_seed=0 - eval/train_loss": [0.7, 0.6, 0.5],
        }
    )
    frame.to_csv(path, index=False)
    assert sniff_wandb_csv(path) == "chart"
    row = load_runs(path, pattern=PATTERN).iloc[0]
    assert row["source"] == "wandb" and (row["test_loss"], row["train_loss"]) == (0.8, 0.5)
    frame.rename(columns={"train/global_step": "Step"}).to_csv(path, index=False)
    assert load_runs(path, pattern=PATTERN).iloc[0]["test_loss"] == 0.8
    # a table whose metric columns are not '<run> - <metric>' is not a chart export
    pd.DataFrame({"Step": [1], "loss": [0.5]}).to_csv(tmp_path / "plain.csv", index=False)
    assert sniff_wandb_csv(tmp_path / "plain.csv") is None
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"train/global_step": ["x"], "r - eval/test_loss": [1.0]}).to_csv(bad, index=False)
    with pytest.raises(RunsFileError, match=r"row 1, field `train/global_step` is not a number"):
        load_runs(bad, pattern=PATTERN)


def test_runs_table_export(tmp_path):
    path = tmp_path / "wandb_export.csv"
    pd.DataFrame(
        {
            "Name": ["d=2_n=64_seed=0", "d=3_n=64_seed=0", "d=3_n=256_seed=1"],
            "State": ["finished", "finished", "crashed"],
            "Notes": ["-", "-", "-"],
            "User": ["me", "me", "me"],
            "Tags": ["", "", ""],
            "Created": ["2025-01-01T00:00:00.000Z"] * 3,
            "Runtime": [100, 120, 30],
            "Sweep": ["", "", ""],
            "learning_rate": [2e-4, 2e-4, 1e-4],
            "seed": [0, 0, 1],
            "eval/test_loss": [0.9, 0.95, 1.1],
            "eval/train_loss": [0.5, 0.55, 0.7],
            "train/loss": [0.52, 0.57, 0.72],
            "train/train_loss": [0.8, 0.85, 0.9],
        }
    ).to_csv(path, index=False)
    assert sniff_wandb_csv(path) == "runs"
    with pytest.warns(UserWarning, match=r"1 run\(s\) not finished.*d=3_n=256_seed=1 \(crashed\)"):
        table = load_runs(path, pattern=PATTERN)
    assert list(table["run_id"]) == ["d=2_n=64_seed=0", "d=3_n=64_seed=0", "d=3_n=256_seed=1"]
    row = table.iloc[2]
    assert (row["difficulty"], row["n"], row["seed"], row["lr"]) == (3.0, 256, 1, 1e-4)
    assert (row["test_loss"], row["train_loss"], row["train_loss_avg"]) == (1.1, 0.7, 0.9)
    assert row["train_loss_logged"] == 0.72 and row["source"] == "wandb"
    assert row["metadata_from"] == "lr: learning_rate (W&B config)"
