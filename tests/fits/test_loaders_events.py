"""TensorBoard event files written by torch's SummaryWriter; MLflow runs logged with the real
mlflow library (a local file store in tmp_path: mlflow-skinny has no SQLite store) and by a real
transformers Trainer through its MLflowCallback; MLflow without the package."""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fits import RUN_COLUMNS, RunsFileError, fit_tradeoff, load_runs
from fits.cli.main import app
from tests.fits._sim import BUDGETS, simulate_runs


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


def test_mlflow_missing_is_a_clear_error(monkeypatch):
    # a None entry in sys.modules makes `import mlflow` fail as if it were not installed
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(
        RunsFileError, match=r"mlflow:exp: reading MLflow runs needs the optional `mlflow` package"
    ):
        load_runs("mlflow:exp")
    with pytest.raises(RunsFileError, match="name the experiment"):
        load_runs("mlflow:")


# --------------------------------------------------------------------------- MLflow, real library
@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A local MLflow file store in tmp_path; the fluent API (and so HF's callback) logs to it.

    MLflow >= 3.7 refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE=true``; its SQLite store
    needs SQLAlchemy, which mlflow-skinny does not install.
    """
    mlflow = pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # set_experiment exports it
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


def log_run(experiment, name, params, history, *, status="FINISHED", synchronous=True):
    """Log one run as HF's MLflowCallback does: params, then metric dicts at step=global_step.

    The callback logs asynchronously (``synchronous=False``); that costs about 0.1 s a run here.
    """
    import mlflow

    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=name) as run:
        if params:
            mlflow.log_params(params)
        for step, metrics in history:
            mlflow.log_metrics(metrics, step=step, synchronous=synchronous)
    if status != "FINISHED":
        mlflow.MlflowClient().set_terminated(run.info.run_id, status=status)
    return run.info.run_id


def hf_history(final_test, final_train, *, last_eval_first=False):
    """Training logs at steps 1..6, evaluations at steps 3 and 6, the run average at step 6."""
    history = [
        (s, {"loss": 2.0 / s, "learning_rate": 1e-4 * (1 - s / 6), "epoch": s / 2})
        for s in range(1, 7)
    ]
    evals = [
        (3, {"eval_test_loss": 1.5, "eval_test_accuracy": 0.2, "eval_train_subset_loss": 1.4}),
        (
            6,
            {
                "eval_test_loss": final_test,
                "eval_test_accuracy": 0.6,
                "eval_train_subset_loss": final_train,
            },
        ),
    ]
    history += evals[::-1] if last_eval_first else evals
    history.append((6, {"train_loss": 1.25, "train_runtime": 3.0}))
    return history


def test_mlflow_round_trip_of_hf_style_runs(mlflow_store):
    hf_params = {"learning_rate": 1e-4, "num_train_epochs": 3.0, "max_steps": -1}
    ids = {}
    ids["a"] = log_run(
        "sft",
        "run-a",
        {"difficulty": 2, "n": 128, "seed": 0, "_name_or_path": "tiny-llama", **hf_params},
        hf_history(0.8, 0.5, last_eval_first=True),  # the latest step wins, not the last write
        synchronous=False,
    )
    ids["b"] = log_run(
        "sft",
        "run-b",
        {"difficulty": 5, "n": 128, "seed": 1, **hf_params},
        hf_history(0.9, 0.3),
        synchronous=False,
    )
    ids["c"] = log_run(
        "sft",
        "run-c",
        {"difficulty": "hard", "n": 512, "seed": 0, "n_tokens": "None", **hf_params},
        hf_history(0.7, 0.6),
        synchronous=False,
    )
    table = load_runs(f"mlflow:sft@{mlflow_store}", difficulty_values={"hard": 7})
    assert list(table.columns[: len(RUN_COLUMNS)]) == list(RUN_COLUMNS)
    assert list(table["run_id"]) == ["run-a", "run-b", "run-c"]  # one row per run
    assert table["source"].eq("mlflow").all()
    assert list(table["difficulty"]) == [2.0, 5.0, 7.0]
    assert list(table["difficulty_label"]) == ["2", "5", "hard"]
    assert list(table["n"]) == [128, 128, 512] and list(table["seed"]) == [0, 1, 0]
    assert table["n_tokens"].isna().all()  # the param "None" is missing, not an error
    # final values (at the latest step), never the run average of HF's `train_loss`
    assert list(table["test_loss"]) == pytest.approx([0.8, 0.9, 0.7])
    assert list(table["train_loss"]) == pytest.approx([0.5, 0.3, 0.6])
    assert list(table["test_acc"]) == pytest.approx([0.6, 0.6, 0.6])
    assert list(table["train_loss_avg"]) == pytest.approx([1.25] * 3)
    assert list(table["train_loss_logged"]) == pytest.approx([2.0 / 6] * 3)
    # the callback's params and steps fill the fields nothing else gives
    assert list(table["lr"]) == pytest.approx([1e-4] * 3)
    assert list(table["epochs"]) == pytest.approx([3.0] * 3)
    assert list(table["steps"]) == [6, 6, 6]
    assert list(table["base_model"]) == ["tiny-llama", None, None]
    assert table.loc[0, "path"] == f"mlflow:sft@{mlflow_store} (run {ids['a']})"
    # without '@uri' the tracking URI set for MLflow is used
    pd.testing.assert_frame_equal(
        load_runs("mlflow:sft", difficulty_values={"hard": 7}).drop(columns="path"),
        table.drop(columns="path"),
    )


def test_mlflow_metadata_from_run_names_and_steps(mlflow_store, monkeypatch):
    for d in (2, 3, 4, 5, 6):  # five runs over three pages of two
        log_run(
            "team@corp.com/sft",
            f"d={d}_n=64_seed=1",
            {"max_steps": 10, "num_train_epochs": 3.0},
            [(10, {"eval_test_loss": d / 10})],
        )
    monkeypatch.setattr("fits.runs._events._PAGE_SIZE", 2)
    table = load_runs(f"mlflow:team@corp.com/sft@{mlflow_store}", pattern="d={d}_n={n}_seed={seed}")
    assert list(table["difficulty"]) == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert list(table["test_loss"]) == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6])
    assert table["n"].eq(64).all() and table["seed"].eq(1).all() and table["steps"].eq(10).all()
    assert table["epochs"].isna().all()  # num_train_epochs is not the epochs run under max_steps
    assert len(load_runs("mlflow:team@corp.com/sft", pattern="d={d}_n={n}_seed={seed}")) == 5


def test_mlflow_errors_name_the_source_and_the_field(mlflow_store, tmp_path):
    log_run("sft", "no-budget", {"difficulty": 2, "seed": 0}, [(4, {"eval_test_loss": 1.0})])
    src = f"mlflow:sft@{mlflow_store}"
    with pytest.raises(RunsFileError, match=r"field `n` of run 'no-budget' is missing"):
        load_runs(src)
    with pytest.raises(
        RunsFileError, match=r"has no experiment named 'nope' \(experiments there: .*'sft'"
    ):
        load_runs(f"mlflow:nope@{mlflow_store}")
    with pytest.raises(RunsFileError, match=r"'sft@nowhere' .*an '@' starts the tracking URI only"):
        load_runs("mlflow:sft@nowhere")  # neither a URI nor an existing path: part of the name
    missing = tmp_path / "elsewhere"
    with pytest.raises(RunsFileError, match=r"tracking store .*elsewhere does not exist"):
        load_runs(f"mlflow:sft@{missing.as_uri()}")
    with pytest.raises(RunsFileError, match=r"store .*nothing.db does not exist"):
        load_runs(f"mlflow:sft@sqlite:///{tmp_path}/nothing.db")
    assert not missing.exists() and not (tmp_path / "nothing.db").exists()  # never created
    with pytest.raises(RunsFileError, match=r"MLflow cannot read the tracking store 'foo://bar'"):
        load_runs("mlflow:sft@foo://bar")
    import mlflow

    mlflow.MlflowClient().create_experiment("empty")
    with pytest.raises(RunsFileError, match=r"the experiment 'empty' has no runs"):
        load_runs(f"mlflow:empty@{mlflow_store}")
    log_run("bad", "r", {"difficulty": 2, "n": "many"}, [(1, {"eval_test_loss": 1.0})])
    with pytest.raises(RunsFileError, match=r"field `n` must be an integer; got 'many'"):
        load_runs(f"mlflow:bad@{mlflow_store}")


def test_mlflow_unfinished_runs_and_stale_evals_warn(mlflow_store):
    meta = {"difficulty": 2, "n": 8}
    log_run("w", "crashed", {**meta, "seed": 0}, [(2, {"eval_test_loss": 1.0})], status="FAILED")
    with pytest.warns(UserWarning, match="run 'crashed' has status FAILED"):
        load_runs(f"mlflow:w@{mlflow_store}")
    log_run("s", "stale", {**meta, "seed": 1}, [(2, {"eval_test_loss": 1.0}), (4, {"loss": 0.5})])
    with pytest.warns(
        UserWarning, match="last evaluation is at step 2 but training ended at step 4"
    ):
        row = load_runs(f"mlflow:s@{mlflow_store}", train_metric="eval").iloc[0]
    assert row["test_loss"] == 1.0 and row["steps"] == 4
    # MLflow's system metrics count samples, not training steps
    history = [
        (4, {"eval_test_loss": 0.7, "loss": 0.5}),
        (50, {"system/cpu_utilization_percentage": 9.0}),
    ]
    log_run("sys", "fine", {**meta, "seed": 2}, history)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = load_runs(f"mlflow:sys@{mlflow_store}", train_metric="eval").iloc[0]
    assert row["steps"] == 4


def test_mlflow_callback_of_a_real_trainer(mlflow_store, tmp_path, monkeypatch):
    """A tiny Llama trained by transformers' Trainer, logged by its own MLflowCallback."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    import mlflow
    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    from tests._tiny import CORPUS, build_tokenizer, tiny_llama

    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "hf")
    tok = build_tokenizer()

    def ds(texts):
        return Dataset.from_dict(dict(tok(texts, truncation=True, max_length=32)))

    train, test = ds(CORPUS[:8]), ds(CORPUS[8:12])
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=4,
        per_device_train_batch_size=4,
        learning_rate=3e-3,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="no",
        report_to=["mlflow"],
        run_name="d=3_n=8",
        use_cpu=True,
        seed=2,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=tiny_llama(),
        args=args,
        train_dataset=train,
        eval_dataset={"train_subset": train, "test": test},
        data_collator=DataCollatorForLanguageModeling(tok, mlm=False),
    )
    mlflow.set_experiment("hf")
    with mlflow.start_run(run_name="d=3_n=8"):  # the user's run; the callback logs into it
        mlflow.log_params({"difficulty": 3, "n": 8})
        trainer.train()
    history = trainer.state.log_history
    last = {k: v for entry in history for k, v in entry.items()}  # last value of each key
    row = load_runs(f"mlflow:hf@{mlflow_store}").iloc[0]
    assert (row["run_id"], row["difficulty"], row["n"]) == ("d=3_n=8", 3.0, 8)
    assert row["seed"] == 2  # TrainingArguments.seed, logged by the callback as a param
    assert row["lr"] == pytest.approx(3e-3)
    assert row["steps"] == 4 and math.isnan(row["epochs"])  # max_steps overrides the epochs
    assert row["test_loss"] == pytest.approx(last["eval_test_loss"])
    assert row["train_loss"] == pytest.approx(last["eval_train_subset_loss"])
    assert row["train_loss_avg"] == pytest.approx(last["train_loss"])
    assert row["train_loss"] != pytest.approx(row["train_loss_avg"])


def test_tradeoff_fit_of_runs_logged_to_mlflow(mlflow_store, tmp_path):
    sim = simulate_runs(0)
    for r in sim.itertuples():
        log_run(
            "grid",
            r.run_id,
            {"difficulty": r.difficulty, "n": r.n, "seed": r.seed},
            [
                (
                    r.n // 4,
                    {
                        "eval_train_loss": r.train_loss,
                        "eval_test_loss": r.test_loss,
                        "eval_train_accuracy": r.train_acc,
                        "eval_test_accuracy": r.test_acc,
                    },
                )
            ],
        )
    source = f"mlflow:grid@{mlflow_store}"
    table = load_runs(source)
    cols = list(sim.columns)
    pd.testing.assert_frame_equal(
        table[cols], sim[cols], check_dtype=False, check_exact=True
    )  # float values survive MLflow exactly
    res = CliRunner().invoke(
        app,
        [
            "fit",
            source,
            "--out",
            str(tmp_path / "fit"),
            "--n-resamples",
            "20",
            "--no-cv",
            "--no-plots",
            "--no-baselines",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.stderr
    d_star = json.loads(res.stdout)["d_star"]
    assert [d["n"] for d in d_star] == list(BUDGETS)
    direct = fit_tradeoff(sim, n_resamples=20, cv=False, baselines=False, seed=0)
    assert [d["value"] for d in d_star] == pytest.approx([d.value for d in direct.d_star], rel=1e-9)
    assert np.all(np.diff([d["value"] for d in d_star]) >= 0)  # the simulated d* grows with n


def test_bare_mlruns_folder_reads_every_experiment_without_the_env_switch(
    mlflow_store, monkeypatch
):
    meta = {"n": 64, "seed": 0}
    log_run("a", "d=2_n=64_seed=0", {**meta, "difficulty": 2}, [(4, {"eval_test_loss": 0.9})])
    log_run("b", "d=3_n=64_seed=0", {**meta, "difficulty": 3}, [(4, {"eval_test_loss": 1.1})])
    store = Path(url2pathname(urlparse(mlflow_store).path))
    assert (store / "0" / "meta.yaml").is_file() or any(store.glob("*/meta.yaml"))
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    table = load_runs(store, train_metric="eval")
    assert list(table["run_id"]) == ["d=2_n=64_seed=0", "d=3_n=64_seed=0"]
    assert list(table["test_loss"]) == [0.9, 1.1]
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # set only during the read
    # the explicit form works without the switch too
    assert len(load_runs(f"mlflow:a@{store.as_uri()}", train_metric="eval")) == 1
