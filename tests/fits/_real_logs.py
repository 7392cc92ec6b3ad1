"""Run folders in the formats real trainers write, with metrics from a known tradeoff.

The structure copies real files (field names, nesting, the final summary entry of
``log_history``, LlamaFactory's ``trainer_log.jsonl``): Hugging Face Trainer output folders of an
older transformers (``trainer_state.json`` with the classic top-level fields, ``all_results.json``)
and a newer one (``grad_norm``, ``best_global_step``, ``stateful_callbacks``, ...), a TRL
SFTTrainer output (``mean_token_accuracy``, ``num_tokens``), and LlamaFactory output folders
(``trainer_log.jsonl``, ``training_args.yaml``, ``checkpoint-*/`` with their own state and adapter
config). None of them has an evaluation on training data: the training metric is the logged
``loss``.

The logged loss of a run is ``train + 0.6 exp(-step / 25) + noise`` (the decay of a real curve,
minibatch noise), so its last logging window sits near the final training loss ``train`` of
:func:`tests.fits._sim.simulate_runs`; the eval loss is that run's ``test_loss``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("hf_old", "hf_new", "trl", "llamafactory")
MAX_STEPS = 100
LOGGING_STEPS = 5
EVAL_STEPS = 50


def _curve(train: float, rng: np.random.Generator, noise: float) -> list[tuple[int, float]]:
    return [
        (s, round(train + 0.6 * math.exp(-s / 25) + float(rng.normal(0.0, noise)), 4))
        for s in range(LOGGING_STEPS, MAX_STEPS + 1, LOGGING_STEPS)
    ]


def trainer_state(
    kind: str,
    curve: list[tuple[int, float]],
    test_loss: float,
    *,
    upto: int = MAX_STEPS,
    max_steps: int = MAX_STEPS,
    epochs: float = 3.0,
) -> dict[str, Any]:
    """A ``trainer_state.json`` of ``kind`` up to step ``upto`` (the final summary entry only
    when training reached ``max_steps``)."""
    new = kind != "hf_old"
    per_step = epochs / max_steps
    history: list[dict[str, Any]] = []
    for step, loss in curve:
        if step > upto:
            break
        entry: dict[str, Any] = {"epoch": round(step * per_step, 4)}
        if new:
            entry["grad_norm"] = round(1.0 / math.sqrt(step), 4)
        entry["learning_rate"] = 2e-4 * (1 - step / max_steps)
        entry["loss"] = loss
        if kind == "trl":
            entry["mean_token_accuracy"] = round(1.0 - loss / 3, 4)
            entry["num_tokens"] = 512.0 * step
        entry["step"] = step
        history.append(entry)
        if step % EVAL_STEPS == 0:
            ev: dict[str, Any] = {
                "epoch": round(step * per_step, 4),
                "eval_loss": round(test_loss + (0.0 if step == max_steps else 0.05), 6),
                "eval_runtime": 1.234,
                "eval_samples_per_second": 81.0,
                "eval_steps_per_second": 10.1,
            }
            if kind == "trl":
                ev["eval_mean_token_accuracy"] = 0.6
                ev["eval_num_tokens"] = 512.0 * step
            ev["step"] = step
            history.append(ev)
    done = upto >= max_steps
    if done:
        losses = [v for s, v in curve]
        history.append(
            {
                "epoch": epochs,
                "step": max_steps,
                "total_flos": 1.2e15,
                "train_loss": sum(losses) / len(losses),
                "train_runtime": 98.7,
                "train_samples_per_second": 12.3,
                "train_steps_per_second": 1.01,
            }
        )
    state: dict[str, Any] = {
        "best_metric": None,
        "best_model_checkpoint": None,
        "epoch": round(min(upto, max_steps) * per_step, 4),
        "eval_steps": EVAL_STEPS,
        "global_step": min(upto, max_steps),
        "is_hyper_param_search": False,
        "is_local_process_zero": True,
        "is_world_process_zero": True,
        "log_history": history,
        "logging_steps": LOGGING_STEPS,
        "max_steps": max_steps,
        "num_input_tokens_seen": 0,
        "num_train_epochs": int(epochs),
        "save_steps": EVAL_STEPS,
        "total_flos": 1.2e15,
        "train_batch_size": 4,
        "trial_name": None,
        "trial_params": None,
    }
    if new:
        state["best_global_step"] = None
        state["stateful_callbacks"] = {
            "TrainerControl": {
                "args": {
                    "should_epoch_stop": False,
                    "should_evaluate": False,
                    "should_log": False,
                    "should_save": True,
                    "should_training_stop": done,
                },
                "attributes": {},
            }
        }
    else:
        for key in ("eval_steps", "logging_steps", "save_steps", "train_batch_size"):
            del state[key]
        del state["num_input_tokens_seen"]
    return state


def _adapter_config(base: str) -> dict[str, Any]:
    return {
        "alpha_pattern": {},
        "base_model_name_or_path": base,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "lora_alpha": 16,
        "lora_dropout": 0.05,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": 8,
        "rank_pattern": {},
        "target_modules": ["q_proj", "v_proj"],
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
    }


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")


def write_run(
    folder: Path,
    kind: str,
    *,
    train: float,
    test: float,
    n: int | None = None,
    seed: int = 0,
    noise: float = 0.01,
    checkpoints: bool = True,
) -> Path:
    """Write one output folder of ``kind`` whose final model has losses ``train``/``test``."""
    rng = np.random.default_rng(seed)
    curve = _curve(train, rng, noise)
    state = trainer_state(kind, curve, test)
    folder.mkdir(parents=True, exist_ok=True)
    _dump(folder / "trainer_state.json", state)
    summary = state["log_history"][-1]
    results = {
        "epoch": summary["epoch"],
        "eval_loss": round(test, 6),
        "eval_runtime": 1.234,
        "eval_samples_per_second": 81.0,
        "eval_steps_per_second": 10.1,
        "total_flos": summary["total_flos"],
        "train_loss": summary["train_loss"],
        "train_runtime": summary["train_runtime"],
        "train_samples_per_second": summary["train_samples_per_second"],
        "train_steps_per_second": summary["train_steps_per_second"],
    }
    if n is not None:
        results["train_samples"] = n
    _dump(folder / "all_results.json", results)
    base = "Qwen/Qwen2.5-0.5B"
    _dump(folder / "adapter_config.json", _adapter_config(base))
    if kind == "llamafactory":
        lines = []
        for step, loss in curve:
            lines.append(
                {
                    "current_steps": step,
                    "total_steps": MAX_STEPS,
                    "loss": loss,
                    "lr": 2e-4 * (1 - step / MAX_STEPS),
                    "epoch": round(3.0 * step / MAX_STEPS, 2),
                    "percentage": round(100.0 * step / MAX_STEPS, 2),
                    "elapsed_time": f"0:00:{step // 2:02d}",
                    "remaining_time": f"0:00:{(MAX_STEPS - step) // 2:02d}",
                }
            )
            if step % EVAL_STEPS == 0:
                lines.append(
                    {
                        "current_steps": step,
                        "total_steps": MAX_STEPS,
                        "eval_loss": round(test, 6),
                        "epoch": round(3.0 * step / MAX_STEPS, 2),
                        "percentage": round(100.0 * step / MAX_STEPS, 2),
                        "elapsed_time": f"0:00:{step // 2:02d}",
                        "remaining_time": f"0:00:{(MAX_STEPS - step) // 2:02d}",
                    }
                )
        (folder / "trainer_log.jsonl").write_text(
            "".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8"
        )
        (folder / "training_args.yaml").write_text(
            "bf16: true\ncutoff_len: 1024\ndataset: alpaca_en\nfinetuning_type: lora\n"
            f"learning_rate: 0.0002\nmax_samples: {n or 1000}\nnum_train_epochs: 3.0\n"
            "output_dir: saves/run\nper_device_train_batch_size: 4\nstage: sft\n",
            encoding="utf-8",
        )
        _dump(folder / "train_results.json", {k: v for k, v in results.items() if "eval" not in k})
        _dump(folder / "eval_results.json", {k: v for k, v in results.items() if "eval" in k})
    if checkpoints:
        for step in (EVAL_STEPS, MAX_STEPS):
            ck = folder / f"checkpoint-{step}"
            _dump(ck / "trainer_state.json", trainer_state(kind, curve, test, upto=step))
            # a checkpoint's adapter config may name another base; the root's wins
            _dump(ck / "adapter_config.json", _adapter_config("/scratch/cache/qwen-0.5b"))
    return folder


def write_outputs(
    root: Path, runs: pd.DataFrame, *, kinds: tuple[str, ...] = KINDS, **kwargs: Any
) -> Path:
    """One output folder per row of a simulated runs table (``run_id`` as the folder name),
    cycling through ``kinds``."""
    for i, row in enumerate(runs.itertuples(index=False)):
        write_run(
            root / row.run_id,
            kinds[i % len(kinds)],
            train=float(row.train_loss),
            test=float(row.test_loss),
            seed=1000 + i,
            **kwargs,
        )
    return root
