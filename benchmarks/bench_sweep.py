"""Sweep overhead and demo wall time, as ratios against baselines measured in the same process.

Run with ``python -m pytest benchmarks/bench_sweep.py --benchmark-enable -s``.

1. ``test_sweep_overhead``: one synthetic run through ``run_sweep`` (plan, temporary folder,
   ``transformers.Trainer``, evaluation, weight statistics, metadata, rename) against a plain
   ``Trainer`` run of the same configuration that also saves the model and state and runs the
   same evaluation. Goal: ratio <= 1.10. The weight-statistics pass is counted as overhead.
2. ``test_demo_wall_time``: ``tradeoff demo --quick`` wall time against the ideal packing of its
   runs on 2 cores (sum of the runs' own times / 2).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from fits import find_synthetic_base, run_sweep

SPEC = {
    "name": "bench",
    "task": {"test_per_op": 25},
    "difficulty": {"centers": [4]},
    "budget": {"n": [256], "seeds": [0]},
    "train": {"batch_size": 16, "logging_steps": 10},
}


def _plain_trainer_run(out: Path) -> float:
    """The same run with transformers.Trainer directly (no sweep machinery)."""
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    from fits import SweepSpec
    from fits.sweep._tasks import make_task
    from fits.sweep._train import encode_records, evaluate_records

    t0 = time.perf_counter()
    spec = SweepSpec.from_dict(SPEC)
    task = make_task(spec)
    diff = task.difficulties()[0]
    base = find_synthetic_base()
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    records = task.train_records(diff, 256, 0)
    prompts, comps = encode_records(tok, records)
    ds = Dataset.from_dict(
        {
            "input_ids": [p + c for p, c in zip(prompts, comps, strict=True)],
            "labels": [[-100] * len(p) + c for p, c in zip(prompts, comps, strict=True)],
        }
    )
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=16,
        learning_rate=1e-3,
        lr_scheduler_type="cosine",
        warmup_steps=0.1,
        num_train_epochs=3,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        seed=0,
        data_seed=0,
        use_cpu=True,
        disable_tqdm=True,
        optim="adamw_torch",
        max_grad_norm=1.0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=ds,
        data_collator=DataCollatorForSeq2Seq(tok, padding=True),
        processing_class=tok,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    trainer.save_model(str(out))
    test = task.test_records()
    evaluate_records(model, tok, task, test, task.slices(test, diff), batch_size=256)
    evaluate_records(
        model, tok, task, records, {"train": np.ones(len(records), bool)}, batch_size=256
    )
    trainer.save_state()
    return time.perf_counter() - t0


def test_sweep_overhead(benchmark, tmp_path):
    torch.set_num_threads(1)
    _plain_trainer_run(tmp_path / "warm")  # warm-up: imports and first-call costs
    base_times, sweep_times = [], []

    def sweep_once():
        root = tmp_path / f"sweep{len(sweep_times)}"
        t0 = time.perf_counter()
        run_sweep(SPEC, root)
        sweep_times.append(time.perf_counter() - t0)

    # interleaved rounds, so that load changes on a shared machine hit both sides alike
    for i in range(3):
        base_times.append(_plain_trainer_run(tmp_path / f"plain{i}"))
        if i < 2:
            sweep_once()
    benchmark.pedantic(sweep_once, rounds=1, iterations=1)
    ratio = min(sweep_times) / min(base_times)
    pairs = [s / b for s, b in zip(sweep_times, base_times, strict=True)]
    benchmark.extra_info.update(
        {
            "plain_trainer_s": base_times,
            "sweep_s": sweep_times,
            "ratio_of_minima": ratio,
            "ratio_per_pair": pairs,
            "goal": 1.10,
        }
    )
    print(
        f"\nsweep overhead: plain Trainer {min(base_times):.2f} s (min of {len(base_times)}), "
        f"sweep {min(sweep_times):.2f} s (min of {len(sweep_times)}), ratio {ratio:.3f} "
        f"(per interleaved pair: {', '.join(f'{r:.2f}' for r in pairs)}; goal <= 1.10)"
    )


def test_demo_wall_time(benchmark, tmp_path):
    from fits.experiments._demo import run_demo

    walls = []

    def demo_once():
        out = tmp_path / f"demo{len(walls)}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        run_demo(out, quick=True, progress=False, n_resamples=200)
        walls.append((time.perf_counter() - t0, out))

    benchmark.pedantic(demo_once, rounds=1, iterations=1)
    wall, out = walls[0]
    run_times = [
        json.loads((p / "run_meta.json").read_text())["timing"]["total_seconds"]
        for p in (out / "sweep" / "runs").iterdir()
    ]
    ideal = sum(run_times) / 2
    benchmark.extra_info.update(
        {"demo_quick_wall_s": wall, "ideal_2core_s": ideal, "ratio": wall / ideal}
    )
    print(
        f"\ndemo --quick: {wall:.1f} s wall; runs {sum(run_times):.1f} s in total "
        f"(ideal on 2 cores {ideal:.1f} s); ratio {wall / ideal:.2f}"
    )
