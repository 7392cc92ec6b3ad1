"""Hugging Face run folders written by a real transformers Trainer, LlamaFactory logs, sweeps."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from fits import MetadataConflictError, RunsFileError, load_runs

PATTERN = "d={d}_n={n}_seed={seed}"


@pytest.fixture(scope="module")
def trainer_run(tmp_path_factory):
    """A real Trainer run of a tiny Llama: 4 steps, eval sets as a dict {train, test}."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    from tests._tiny import CORPUS, build_tokenizer, tiny_llama

    tok = build_tokenizer()

    def ds(texts):
        return Dataset.from_dict(dict(tok(texts, truncation=True, max_length=32)))

    train, test = ds(CORPUS[:8]), ds(CORPUS[8:12])
    out = tmp_path_factory.mktemp("hf") / "d=3_n=8_seed=1"
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=4,
        per_device_train_batch_size=4,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=tiny_llama(),
        args=args,
        train_dataset=train,
        eval_dataset={"train": train, "test": test},
        data_collator=DataCollatorForLanguageModeling(tok, mlm=False),
    )
    result = trainer.train()
    trainer.save_state()
    metrics = trainer.evaluate()
    trainer.save_metrics("all", {**result.metrics, **metrics})
    return out


def test_trainer_folder_final_losses(trainer_run):
    table = load_runs(trainer_run, pattern=PATTERN)
    assert len(table) == 1
    row = table.iloc[0]
    results = json.loads((trainer_run / "all_results.json").read_text())
    assert row["run_id"] == "d=3_n=8_seed=1" and row["source"] == "hf"
    assert (row["difficulty"], row["n"], row["seed"]) == (3.0, 8, 1)
    assert row["train_loss"] == pytest.approx(results["eval_train_loss"])
    assert row["test_loss"] == pytest.approx(results["eval_test_loss"])
    # the run average is kept apart and never used as the final training loss
    assert row["train_loss_avg"] == pytest.approx(results["train_loss"])
    assert row["train_loss"] != pytest.approx(results["train_loss"])
    assert row["steps"] == 4 and row["global_step"] == 4
    assert row["transformers_version"]  # from the last checkpoint's config.json


def test_checkpoint_fallback_uses_last_checkpoint_state(trainer_run, tmp_path):
    run = tmp_path / trainer_run.name
    shutil.copytree(trainer_run, run)
    (run / "trainer_state.json").unlink()
    (run / "all_results.json").unlink()
    (run / "runs" / "Nov25_host").mkdir(parents=True)  # a TensorBoard logdir is not a sweep
    with pytest.warns(UserWarning, match=r"no trainer_state.json of its own; .*\(checkpoint-4\)"):
        row = load_runs(run, pattern=PATTERN).iloc[0]
    state = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    last = [e for e in state["log_history"] if "eval_test_loss" in e][-1]
    assert row["test_loss"] == pytest.approx(last["eval_test_loss"])
    logged = [e for e in state["log_history"] if "loss" in e]
    assert row["train_loss_last"] == pytest.approx(logged[-1]["loss"])
    # fewer than 3 entries in the last 10% of steps: the mean of the last 3 entries
    assert row["train_loss_logged"] == pytest.approx(
        sum(e["loss"] for e in logged[-3:]) / len(logged[-3:])
    )


def test_eval_before_the_last_step_warns(tmp_path):
    run = tmp_path / "d=2_n=8_seed=0"
    run.mkdir()
    history = [
        {"step": 2, "epoch": 1.0, "eval_test_loss": 1.5, "eval_train_loss": 1.0},
        {"step": 4, "epoch": 2.0, "loss": 0.9},
    ]
    (run / "trainer_state.json").write_text(json.dumps({"global_step": 4, "log_history": history}))
    with pytest.warns(UserWarning, match="step 2 but training ended at step 4"):
        row = load_runs(run, pattern=PATTERN).iloc[0]
    assert row["test_loss"] == 1.5


def test_llamafactory_log_lines(tmp_path):
    run = tmp_path / "d=4_n=16_seed=2"
    run.mkdir()
    lines = [
        {
            "current_steps": 1,
            "total_steps": 4,
            "loss": 2.0,
            "lr": 1e-4,
            "epoch": 0.5,
            "percentage": 25.0,
            "elapsed_time": "0:00:01",
            "remaining_time": "0:00:03",
        },
        {
            "current_steps": 2,
            "total_steps": 4,
            "eval_loss": 1.8,
            "epoch": 1.0,
            "percentage": 50.0,
            "elapsed_time": "0:00:02",
            "remaining_time": "0:00:02",
        },
        {
            "current_steps": 4,
            "total_steps": 4,
            "loss": 1.5,
            "lr": 0.0,
            "epoch": 2.0,
            "percentage": 100.0,
            "elapsed_time": "0:00:04",
            "remaining_time": "0:00:00",
            "throughput": 10.0,
            "total_tokens": 512,
        },
    ]
    (run / "trainer_log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    (run / "all_results.json").write_text(json.dumps({"eval_train_loss": 1.2, "train_loss": 1.9}))
    row = load_runs(run / "trainer_log.jsonl", pattern=PATTERN).iloc[0]
    assert row["source"] == "llamafactory"
    assert (row["test_loss"], row["train_loss"], row["train_loss_avg"]) == (1.8, 1.2, 1.9)
    assert row["train_loss_last"] == 1.5 and row["train_loss_logged"] == 1.75
    assert row["train_loss_source"] == "eval_train_loss"
    assert row["tokens_seen"] == 512 and row["steps"] == 4


def test_malformed_json_names_file(tmp_path):
    run = tmp_path / "d=1_n=8_seed=0"
    run.mkdir()
    (run / "trainer_state.json").write_text('{"log_history": [')
    with pytest.raises(RunsFileError, match=r"trainer_state.json: not valid JSON"):
        load_runs(run, pattern=PATTERN)
    (run / "trainer_state.json").write_text('{"global_step": 3}')
    with pytest.raises(RunsFileError, match=r"trainer_state.json: field `log_history` is missing"):
        load_runs(run, pattern=PATTERN)
    (run / "trainer_state.json").unlink()
    (run / "trainer_log.jsonl").write_text('{"loss": 1.0}\nnot json\n')
    with pytest.raises(RunsFileError, match=r"trainer_log.jsonl: line 2 is not valid JSON"):
        load_runs(run, pattern=PATTERN)


def _sweep_run(root, run_id, meta, results, stats=None):
    run = root / "runs" / run_id
    run.mkdir(parents=True)
    (run / "run_meta.json").write_text(json.dumps({"run_id": run_id, **meta}))
    (run / "all_results.json").write_text(json.dumps(results))
    (run / "trainer_state.json").write_text(
        json.dumps({"global_step": 10, "log_history": [{"step": 10, "loss": 0.5}]})
    )
    if stats is not None:
        stats.save(run)
    return run


def test_sweep_folder_with_weight_stats(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from measurement import weight_statistics
    from tests._tiny import build_tokenizer, finetune_steps, save_model, tiny_llama

    base = save_model(tiny_llama(), tmp_path / "base")
    tuned = save_model(finetune_steps(tiny_llama(), build_tokenizer(), steps=2), tmp_path / "tuned")
    stats = weight_statistics(base, tuned)
    meta = {
        "difficulty": 4,
        "difficulty_label": "ops4",
        "n": 64,
        "seed": 0,
        "base_model": "tiny",
        "budget_mode": "epochs",
        "epochs": 3,
        "steps": 12,
        "lr": 1e-3,
        "batch_size": 16,
        "finetune": "full",
        "task": "synthetic",
        "versions": {"torch": "2.13"},
    }
    results = {
        "eval_train_loss": 0.4,
        "eval_test_loss": 0.9,
        "eval_test_accuracy": 0.6,
        "eval_train_accuracy": 0.95,
        "eval_ops5_loss": 1.1,
        "eval_extrap_accuracy": 0.2,
        "train_loss": 0.7,
    }
    _sweep_run(tmp_path / "sweep", "abc123", meta, results, stats)
    (tmp_path / "sweep" / "runs" / ".inflight.x.tmp").mkdir()
    table = load_runs(tmp_path / "sweep")
    row = table.iloc[0]
    assert len(table) == 1 and row["run_id"] == "abc123" and row["source"] == "sweep"
    assert (row["train_loss"], row["test_loss"], row["test_acc"], row["train_acc"]) == (
        0.4,
        0.9,
        0.6,
        0.95,
    )
    assert row["test_loss_ops5"] == 1.1 and row["test_acc_extrap"] == 0.2
    assert (
        row["difficulty_label"] == "ops4" and row["budget_mode"] == "epochs" and row["lr"] == 1e-3
    )
    assert row["sq_dist"] == pytest.approx(float(stats.table["sq_delta"].sum()), rel=1e-12)
    assert row["sq_dist"] > 0
    assert row["versions.torch"] == "2.13"


def test_conflicting_metadata_names_file_and_field(tmp_path):
    run = _sweep_run(
        tmp_path / "s",
        "d=2_n=64_seed=0",
        {"difficulty": 2, "n": 128, "seed": 0},
        {"eval_train_loss": 0.1, "eval_test_loss": 0.2},
    )
    with pytest.raises(
        MetadataConflictError,
        match=r"field `n` .* is 128 in .*run_meta.json but 64 in folder pattern",
    ):
        load_runs(tmp_path / "s", pattern=PATTERN)
    assert run.exists()


def test_missing_budget_is_an_error(tmp_path):
    run = tmp_path / "r1"
    run.mkdir()
    (run / "all_results.json").write_text(
        json.dumps({"eval_test_loss": 1.0, "eval_train_loss": 0.5})
    )
    with pytest.raises(RunsFileError, match=r"r1: field `difficulty` of run 'r1' is missing"):
        load_runs(run)
    meta = pd.DataFrame({"run_id": ["r1"], "difficulty": [2.0], "n": [32]})
    table = load_runs(tmp_path, metadata=meta)
    assert table.loc[0, "n"] == 32 and np.isnan(table.loc[0, "kl"])


def test_folder_of_run_folders(tmp_path):
    for d in (1, 2):
        run = tmp_path / f"d={d}_n=8_seed=0"
        run.mkdir()
        (run / "all_results.json").write_text(
            json.dumps({"eval_loss": 1.0 + d, "eval_train_loss": 0.5})
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = load_runs(tmp_path, pattern=PATTERN)
    assert list(table["difficulty"]) == [1.0, 2.0] and list(table["test_loss"]) == [2.0, 3.0]
