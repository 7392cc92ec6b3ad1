"""Users' own runs: real-format HF Trainer, TRL and LlamaFactory output folders fitted as they are.

The folders (``tests.fits._real_logs``) copy the structure of real files and carry metrics drawn
from the known tradeoff of ``tests.fits._sim``; none has an evaluation on training data, so the
training metric is the logged ``loss``.
"""

from __future__ import annotations

import json
import math
import shutil
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from fits import fit_tradeoff, load_runs
from fits.cli.main import app
from fits.exceptions import RunsFileError
from fits.runs._record import smoothed_logged_loss
from tests.fits._real_logs import KINDS, trainer_state, write_outputs, write_run
from tests.fits._sim import BUDGETS, TRUTH, simulate_runs, true_dstar

PATTERN = "d={d}_n={n}_seed={seed}"
runner = CliRunner()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("real") / "outputs"
    return write_outputs(root, simulate_runs(7, noise=0.005))


def _one(tmp_path, kind, **kwargs):
    return write_run(tmp_path / "d=2_n=64_seed=0", kind, train=0.5, test=0.9, **kwargs)


# --------------------------------------------------------------------------- the logged window
def test_logged_window_is_the_last_tenth_of_steps_with_at_least_three_entries():
    steps = list(range(10, 201, 10))  # 20 entries, last 10% of steps: 180..200
    losses = [float(s) for s in steps]
    assert smoothed_logged_loss(steps, losses) == pytest.approx((180 + 190 + 200) / 3)
    steps = list(range(2, 201, 2))  # 100 entries; steps >= 180: 11 entries
    assert smoothed_logged_loss(steps, [float(s) for s in steps]) == pytest.approx(190.0)
    # a coarse log: the window holds 1 entry, so the last 3 are averaged
    assert smoothed_logged_loss([50, 100, 150, 200], [4.0, 3.0, 2.0, 1.0]) == pytest.approx(2.0)
    assert smoothed_logged_loss([1, 2], [float("nan"), 1.5]) == 1.5
    assert smoothed_logged_loss([], []) is None
    assert smoothed_logged_loss([1], [None]) is None


@pytest.mark.parametrize("kind", KINDS)
def test_each_real_format_gives_the_smoothed_logged_loss(tmp_path, kind):
    run = _one(tmp_path, kind)
    state = json.loads((run / "trainer_state.json").read_text())
    logged = [e for e in state["log_history"] if "loss" in e]
    window = [e["loss"] for e in logged if e["step"] >= 90]
    assert len(window) == 3  # steps 90, 95, 100 of 100
    with pytest.warns(UserWarning, match=r"1 of 1 runs have no evaluation on training data") as rec:
        row = load_runs(run, pattern=PATTERN).iloc[0]
    assert len([w for w in rec if "train_loss:" in str(w.message)]) == 1
    assert row["source"] == ("llamafactory" if kind == "llamafactory" else "hf")
    assert row["train_loss"] == pytest.approx(sum(window) / 3)
    assert row["train_loss_logged"] == row["train_loss"]
    assert row["train_loss_source"] == "train_loss_logged"
    assert row["train_loss_last"] == logged[-1]["loss"]
    # the final summary entry's run average is kept apart
    assert row["train_loss_avg"] == pytest.approx(state["log_history"][-1]["train_loss"])
    assert row["train_loss_avg"] > row["train_loss"] + 0.05
    assert row["test_loss"] == pytest.approx(0.9)
    # the root adapter_config.json wins over the checkpoints' (which name another base)
    assert row["base_model"] == "Qwen/Qwen2.5-0.5B"
    assert row["steps"] == 100


def test_llamafactory_log_alone_dedupes_repeated_lines(tmp_path):
    run = _one(tmp_path, "llamafactory", checkpoints=False)
    (run / "trainer_state.json").unlink()
    lines = (run / "trainer_log.jsonl").read_text().splitlines()
    # a multi-GPU run writes the last lines twice
    (run / "trainer_log.jsonl").write_text("\n".join(lines + lines[-3:]) + "\n")
    losses = [json.loads(x) for x in lines]
    window = [x["loss"] for x in losses if "loss" in x and x["current_steps"] >= 90]
    with pytest.warns(UserWarning, match="train_loss_logged"):
        row = load_runs(run / "trainer_log.jsonl", pattern=PATTERN).iloc[0]
    assert row["train_loss"] == pytest.approx(sum(window) / len(window))


def test_train_metric_chooses_explicitly(tmp_path):
    run = _one(tmp_path, "hf_new")
    results = json.loads((run / "all_results.json").read_text())
    results["eval_train_loss"] = 0.4
    (run / "all_results.json").write_text(json.dumps(results))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit or an eval choice says nothing
        auto = load_runs(run, pattern=PATTERN).iloc[0]
        logged = load_runs(run, pattern=PATTERN, train_metric="logged").iloc[0]
        avg = load_runs(run, pattern=PATTERN, train_metric="average").iloc[0]
        ev = load_runs(run, pattern=PATTERN, train_metric="eval").iloc[0]
    assert (auto["train_loss"], auto["train_loss_source"]) == (0.4, "eval_train_loss")
    assert ev["train_loss"] == 0.4
    assert logged["train_loss"] == logged["train_loss_logged"] != 0.4
    assert (logged["train_loss_source"], logged["train_loss_eval"]) == ("train_loss_logged", 0.4)
    assert avg["train_loss"] == pytest.approx(results["train_loss"])
    assert avg["train_loss_source"] == "train_loss_avg"
    # no eval on training data: "eval" leaves it missing (the fit then refuses the run)
    other = _one(tmp_path / "b", "hf_new")
    assert math.isnan(load_runs(other, pattern=PATTERN, train_metric="eval").iloc[0]["train_loss"])
    (other / "trainer_state.json").unlink()
    shutil.rmtree(other / "checkpoint-50")
    shutil.rmtree(other / "checkpoint-100")
    with pytest.raises(
        RunsFileError, match=r"has no logged training `loss` \(`train_loss_logged`\)"
    ):
        load_runs(other, pattern=PATTERN, train_metric="logged")
    with pytest.raises(ValueError, match="train_metric"):
        load_runs(other, pattern=PATTERN, train_metric="last")


# --------------------------------------------------------------------------- the fit
def test_library_fit_recovers_dstar_from_the_logged_loss(outputs):
    with pytest.warns(UserWarning, match="60 of 60 runs"):
        table = load_runs(outputs, pattern=PATTERN)
    assert set(table["source"]) == {"hf", "llamafactory"}
    res = fit_tradeoff(table, n_resamples=0, cv=False, baselines=False)
    truth = [true_dstar(n, d_ref=2.0, **TRUTH) for n in BUDGETS]
    assert [e.value for e in res.d_star] == pytest.approx(truth, rel=0.2)
    assert "training loss from: train_loss_logged (60 runs)" in res.summary().text


def test_cli_fits_real_outputs_from_the_logged_loss(outputs, tmp_path):
    args = ["fit", outputs, "--pattern", PATTERN, "--out", tmp_path / "fit", "--json"]
    res = runner.invoke(app, [str(a) for a in [*args, "--n-resamples", "0", "--no-plots"]])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    truth = [true_dstar(n, d_ref=2.0, **TRUTH) for n in BUDGETS]
    assert [e["value"] for e in obj["d_star"]] == pytest.approx(truth, rel=0.2)
    assert obj["train_loss_source"] == {"train_loss_logged": 60}
    lines = [x for x in res.stderr.splitlines() if "train_loss_logged" in x]
    assert len(lines) == 1 and lines[0].startswith("warning: train_loss: 60 of 60 runs")
    # the choice made explicit: no warning, and the summary names the source
    res = runner.invoke(
        app,
        [
            str(a)
            for a in [*args[:-1], "--train-metric", "logged", "--n-resamples", "0", "--no-plots"]
        ],
    )
    assert res.exit_code == 0, res.output
    assert "train_loss_logged" not in res.stderr
    assert "training loss from: train_loss_logged (60 runs)" in res.stdout
    res = runner.invoke(app, [str(a) for a in [*args, "--train-metric", "eval", "--no-plots"]])
    assert res.exit_code == 2 and "`train_loss` must be finite" in res.stderr


# --------------------------------------------------------------------------- slices, columns
def _sliced(tmp_path):
    run = _one(tmp_path, "hf_old", checkpoints=False)
    results = json.loads((run / "all_results.json").read_text())
    results.update({f"eval_g{i}_loss": 1.0 + i / 10 for i in range(6)})
    results["eval_tr_loss"] = 0.45
    (run / "all_results.json").write_text(json.dumps(results))
    return run


def test_test_and_train_slices_and_columns_for_folders(tmp_path):
    run = _sliced(tmp_path)
    row = load_runs(run, pattern=PATTERN, test_slice="g3", train_slices=["tr"]).iloc[0]
    assert (row["test_loss"], row["train_loss"]) == (1.3, 0.45)
    assert row["train_loss_source"] == "eval_tr_loss" and row["test_loss_g0"] == 1.0
    with pytest.warns(UserWarning, match="train_loss_logged"):
        row = load_runs(run, pattern=PATTERN, columns={"test_loss": "eval_g5_loss"}).iloc[0]
    assert row["test_loss"] == 1.5
    with pytest.raises(RunsFileError, match=r"`columns` test_loss=eval_g9_loss .* no run"):
        load_runs(run, pattern=PATTERN, columns={"test_loss": "eval_g9_loss"})


def test_cli_slices_and_column_options(tmp_path):
    run = _sliced(tmp_path)
    base = ["fit", str(run), "--pattern", PATTERN, "--out", str(tmp_path / "f"), "--no-plots"]
    res = runner.invoke(app, [*base, "--column", "test_loss=eval_g9_loss"])
    assert res.exit_code == 2 and "eval_g9_loss" in res.stderr
    # one run at one budget: the options load, and the fit refuses only for want of budgets
    res = runner.invoke(app, [*base, "--test-slice", "g3", "--train-slice", "tr"])
    assert res.exit_code == 2 and "2 or more budgets" in res.stderr
    assert "train_loss_logged" not in res.stderr  # the train slice was found


# --------------------------------------------------------------------------- layouts
def test_nested_folders_and_multi_component_patterns(tmp_path):
    root = tmp_path / "outputs"
    for d in (1, 2):
        for n in (100, 200):
            for s in (0, 1):
                write_run(root / f"d={d}" / f"n={n}" / f"seed={s}", "trl", train=0.5, test=0.8)
    with pytest.warns(UserWarning, match="8 of 8 runs"):
        table = load_runs(root, pattern="d={d}/n={n}/seed={seed}")
    assert len(table) == 8 and table["run_id"].is_unique
    assert "d=2/n=200/seed=1" in set(table["run_id"])
    row = table.set_index("run_id").loc["d=2/n=200/seed=1"]
    assert (row["difficulty"], row["n"], row["seed"]) == (2.0, 200, 1)


def test_checkpoint_only_folder_uses_the_last_checkpoint_and_says_so(tmp_path):
    run = _one(tmp_path, "hf_new")
    for name in ("trainer_state.json", "all_results.json"):
        (run / name).unlink()
    with pytest.warns(UserWarning, match=r"no trainer_state.json of its own; .*\(checkpoint-100\)"):
        row = load_runs(run, pattern=PATTERN, train_metric="logged").iloc[0]
    assert row["steps"] == 100 and row["test_loss"] == pytest.approx(0.9)


# --------------------------------------------------------------------------- metadata, warnings
def test_budget_and_lr_fall_back_to_train_samples_and_training_args(tmp_path):
    run = write_run(tmp_path / "run-a", "hf_new", train=0.5, test=0.9, n=777)
    lf = write_run(tmp_path / "run-b", "llamafactory", train=0.5, test=0.9)
    (lf / "all_results.json").unlink()
    with pytest.warns(UserWarning, match="train_loss_logged"):
        table = load_runs([run, lf], pattern="run-{d}", difficulty_values={"a": 1, "b": 2})
    a, b = table.set_index("run_id").loc["run-a"], table.set_index("run_id").loc["run-b"]
    assert a["n"] == 777 and a["metadata_from"] == "n: train_samples (all_results.json)"
    assert b["n"] == 1000 and b["lr"] == 2e-4
    assert b["metadata_from"] == (
        "n: max_samples (training_args.yaml); lr: learning_rate (training_args.yaml)"
    )
    res = fit_tradeoff(_budget_table(tmp_path), n_resamples=0, cv=False, baselines=False)
    assert "metadata from: n: train_samples (all_results.json)" in res.summary().text


def _budget_table(tmp_path):
    rows = simulate_runs(3, seeds=1, noise=0.002)
    root = tmp_path / "tb"
    for i, r in enumerate(rows.itertuples(index=False)):
        write_run(
            root / f"d={r.difficulty:g}_seed={r.seed}_b{r.n}",
            "hf_old",
            train=r.train_loss,
            test=r.test_loss,
            n=int(r.n),
            seed=i,
            checkpoints=False,
        )
    with pytest.warns(UserWarning):
        return load_runs(root, pattern="d={d}_seed={seed}_b{budget}")


def test_exclude_applies_before_metadata_checks(tmp_path):
    write_run(tmp_path / "o" / "d=2_n=64_seed=0", "hf_old", train=0.5, test=0.9)
    write_run(tmp_path / "o" / "stray", "hf_old", train=0.5, test=0.9)
    with pytest.raises(RunsFileError, match="field `difficulty` of run 'stray' is missing"):
        load_runs(tmp_path / "o", pattern=PATTERN)
    with pytest.warns(UserWarning, match="1 of 2 runs"):
        table = load_runs(tmp_path / "o", pattern=PATTERN, exclude=["stray"])
    assert list(table["run_id"]) == ["d=2_n=64_seed=0", "stray"]


def test_unfinished_runs_warn(tmp_path):
    run = _one(tmp_path, "hf_new", checkpoints=False)
    state = json.loads((run / "trainer_state.json").read_text())
    curve = [(e["step"], e["loss"]) for e in state["log_history"] if "loss" in e]
    (run / "trainer_state.json").write_text(
        json.dumps(trainer_state("hf_new", curve, 0.9, upto=60))
    )
    with pytest.warns(UserWarning, match=r"stopped at step 60 of 100 \(unfinished"):
        load_runs(run, pattern=PATTERN, train_metric="logged")
    lf = _one(tmp_path / "lf", "llamafactory", checkpoints=False)
    (lf / "trainer_state.json").unlink()
    lines = (lf / "trainer_log.jsonl").read_text().splitlines()[:5]
    (lf / "trainer_log.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match=r"stopped at step 25 of 100"):
        load_runs(lf, pattern=PATTERN, train_metric="logged")


def test_loading_is_deterministic_and_sorted(outputs):
    with pytest.warns(UserWarning):
        a = load_runs(outputs, pattern=PATTERN)
    with pytest.warns(UserWarning):
        b = load_runs(outputs, pattern=PATTERN)
    assert a.equals(b) and np.all(np.diff(a["n"].to_numpy(float)) >= 0)


# --------------------------------------------------------------------------- files people have
@pytest.fixture(scope="module")
def dora_adapter(tmp_path_factory):
    """A real PEFT DoRA adapter (tiny Llama), saved by PEFT itself."""
    from peft import LoraConfig, get_peft_model

    from tests._tiny import tiny_llama

    out = tmp_path_factory.mktemp("dora") / "adapter"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(
            tiny_llama(0), LoraConfig(r=2, target_modules=["q_proj"], use_dora=True)
        )
        model.save_pretrained(out)
    return out


def test_use_dora_disagreeing_with_the_weights_warns(tmp_path, dora_adapter):
    run = _one(tmp_path, "hf_new", checkpoints=False)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(dora_adapter / name, run / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_runs(run, pattern=PATTERN, train_metric="logged")  # config and weights agree
    conf = json.loads((run / "adapter_config.json").read_text())
    conf["use_dora"] = False
    (run / "adapter_config.json").write_text(json.dumps(conf))
    with pytest.warns(UserWarning, match=r"`use_dora` is false but .* has DoRA magnitude vectors"):
        load_runs(run, pattern=PATTERN, train_metric="logged")


def test_git_lfs_pointers_and_non_peft_adapter_configs(tmp_path):
    pointer = (
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 12345\n"
    )
    run = _one(tmp_path, "hf_new", checkpoints=False)
    (run / "adapter_model.safetensors").write_text(pointer)
    with pytest.warns(UserWarning, match=r"adapter_model.safetensors: this is a Git LFS pointer"):
        load_runs(run, pattern=PATTERN, train_metric="logged")
    (run / "adapter_config.json").write_text(json.dumps({"model_type": "llama", "r": 8}))
    with pytest.warns(UserWarning, match=r"adapter_config.json: not a PEFT adapter config"):
        load_runs(run, pattern=PATTERN, train_metric="logged")
    (run / "trainer_state.json").write_text(pointer)
    with pytest.raises(
        RunsFileError, match=r"trainer_state.json: this is a Git LFS pointer, .*`git lfs pull`"
    ):
        load_runs(run, pattern=PATTERN)


def _lm_eval_results(tasks: dict[str, float]) -> dict:
    """The shape of an lm-evaluation-harness (0.4) results file."""
    return {
        "results": {
            task: {
                "alias": task,
                "exact_match,strict-match": acc - 0.05,
                "exact_match_stderr,strict-match": 0.01,
                "exact_match,flexible-extract": acc,
                "exact_match_stderr,flexible-extract": 0.01,
            }
            if task == "gsm8k"
            else {"alias": task, "acc,none": acc, "acc_stderr,none": 0.01, "acc_norm,none": 0.1}
            for task, acc in tasks.items()
        },
        "group_subtasks": {t: [] for t in tasks},
        "configs": {t: {"task": t, "num_fewshot": 0} for t in tasks},
        "versions": dict.fromkeys(tasks, 1.0),
        "n-shot": dict.fromkeys(tasks, 0),
        "higher_is_better": {t: {"acc": True} for t in tasks},
        "n-samples": {t: {"original": 100, "effective": 100} for t in tasks},
        "config": {"model": "hf", "model_args": "pretrained=out/,peft=out/", "batch_size": 8},
        "git_hash": "abc1234",
        "date": 1735689600.0,
        "model_name": "out/",
    }


def test_lm_eval_harness_results_supply_the_test_metric(tmp_path):
    run = _one(tmp_path, "hf_new", checkpoints=False)
    sub = run / "lm_eval" / "out__"
    sub.mkdir(parents=True)
    path = sub / "results_2025-01-01T00-00-00.123456.json"
    path.write_text(json.dumps(_lm_eval_results({"arc_easy": 0.61, "gsm8k": 0.42})))
    row = load_runs(run, pattern=PATTERN, test_slice="arc_easy", train_metric="logged").iloc[0]
    assert row["test_acc"] == 0.61 and row["test_acc_gsm8k"] == 0.42  # the flexible filter
    assert row["test_loss"] == pytest.approx(0.9)  # the trainer's unnamed eval set stays
    # a results file at the run's root is read too; a file without `results` is an error
    (run / "results.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(RunsFileError, match=r"results.json: field `results` is missing"):
        load_runs(run, pattern=PATTERN, train_metric="logged")
