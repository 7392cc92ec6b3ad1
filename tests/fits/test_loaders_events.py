"""TensorBoard event files written by torch's SummaryWriter; MLflow without the package."""

from __future__ import annotations

import importlib.util

import pytest

from fits import RunsFileError, load_runs


def test_tensorboard_events_from_summary_writer(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    for d, final in ((2, 0.8), (5, 0.6)):
        out = tmp_path / f"d={d}_n=128_seed=0"
        writer = SummaryWriter(log_dir=str(out / "runs" / "Nov25_host"))
        for step in range(1, 6):
            writer.add_scalar("train/loss", 2.0 / step, step)
        writer.add_scalar("eval/test_loss", 1.0, 2)
        writer.add_scalar("eval/test_loss", final, 5)
        writer.add_scalar("eval/train_loss", 0.3, 5)
        writer.add_scalar("train/train_loss", 1.1, 5)
        writer.close()
    table = load_runs(tmp_path, format="tensorboard", pattern="d={d}_n={n}_seed={seed}")
    assert table["source"].eq("tensorboard").all()
    assert list(table["run_id"]) == ["d=2_n=128_seed=0", "d=5_n=128_seed=0"]
    assert list(table["test_loss"]) == pytest.approx([0.8, 0.6])  # the value at the last step
    assert list(table["train_loss"]) == pytest.approx([0.3, 0.3])
    assert list(table["train_loss_avg"]) == pytest.approx([1.1, 1.1])
    assert list(table["train_loss_logged"]) == pytest.approx([0.4, 0.4])
    # auto-detection finds the event files too
    assert len(load_runs(tmp_path, pattern="d={d}_n={n}_seed={seed}")) == 2


def test_corrupt_event_file(tmp_path):
    pytest.importorskip("tensorboard")
    bad = tmp_path / "events.out.tfevents.123.host"
    bad.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(RunsFileError):
        load_runs(bad)


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="mlflow is installed")
def test_mlflow_missing_is_a_clear_error():
    with pytest.raises(
        RunsFileError, match=r"mlflow:exp: reading MLflow runs needs the optional `mlflow` package"
    ):
        load_runs("mlflow:exp")
    with pytest.raises(RunsFileError, match="name the experiment"):
        load_runs("mlflow:")
