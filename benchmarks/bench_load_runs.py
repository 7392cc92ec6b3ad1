"""Benchmark of loading real-format run folders (issue 12), as a ratio against a plain
``json.load`` loop over the same files, measured in the same process.

Run with ``python -m pytest benchmarks/bench_load_runs.py --benchmark-enable -s``.

Data: 1,000 output folders in the formats real trainers write (``tests.fits._real_logs``):
Hugging Face Trainer of an older and a newer transformers, TRL SFTTrainer and LlamaFactory, in
turn, each with ``trainer_state.json`` (20 training-log entries, 2 evals, the final summary
entry), ``all_results.json``, ``adapter_config.json`` and two ``checkpoint-*`` folders with their
own state and adapter config; LlamaFactory folders add ``trainer_log.jsonl``,
``training_args.yaml``, ``train_results.json`` and ``eval_results.json``.

- ours: :func:`fits.load_runs` on the parent folder with a name pattern, to the canonical table
  (discovery, parsing, the smoothed logged loss, metadata merge, the DataFrame);
- baseline: ``json.load`` of the run-level JSON files of every folder (the root
  ``trainer_state.json``, ``all_results.json``, ``adapter_config.json``) plus ``json.loads`` of
  each line of ``trainer_log.jsonl``, in a Python loop over the known paths (no discovery);
- strict baseline: the same loop over only the files the loader actually parses (it skips a
  LlamaFactory ``trainer_log.jsonl`` that repeats the root ``trainer_state.json``).

Goals: under 5 s for the 1,000 folders on one core, and at most 2x the baseline (the strict
ratio is reported beside it). All are timed interleaved, best of 5, single-threaded Python;
the ratio uses CPU time (``time.process_time``, one core), which a machine shared with other
jobs disturbs less than wall time (both are reported).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import pytest

from fits import load_runs
from tests.fits._real_logs import KINDS, write_run

N_RUNS = 1000
PATTERN = "d={d}_n={n}_seed={seed}"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench_load") / "outputs"
    for i in range(N_RUNS):
        d, n, seed = 1 + i % 5, 64 * 2 ** (i // 5 % 4), i // 20
        write_run(
            root / f"d={d}_n={n}_seed={seed}",
            KINDS[i % len(KINDS)],
            train=0.5 + 0.01 * d,
            test=0.9 + 0.02 * d,
            seed=i,
        )
    return root


def _baseline_paths(root: Path) -> tuple[list[Path], list[Path]]:
    runs = sorted(p for p in root.iterdir() if p.is_dir())
    files = [
        run / name
        for run in runs
        for name in ("trainer_state.json", "all_results.json", "adapter_config.json")
    ]
    return files, [
        run / "trainer_log.jsonl" for run in runs if (run / "trainer_log.jsonl").is_file()
    ]


def json_load_loop(files: list[Path], logs: list[Path]) -> int:
    """The baseline: ``json.load`` each file and ``json.loads`` each log line."""
    count = 0
    for path in files:
        with open(path, encoding="utf-8") as fh:
            count += len(json.load(fh))
    for path in logs:
        with open(path, encoding="utf-8") as fh:
            count += sum(len(json.loads(line)) for line in fh if line.strip())
    return count


def _ours(root: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_runs(root, pattern=PATTERN, train_metric="logged")


def test_load_runs_against_json_load_loop(benchmark, outputs):
    files, logs = _baseline_paths(outputs)
    table = _ours(outputs)
    assert len(table) == N_RUNS and table["train_loss"].notna().all()
    runs = {
        "baseline": lambda: json_load_loop(files, logs),
        "strict": lambda: json_load_loop(files, []),
        "ours": lambda: _ours(outputs),
    }
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(5):  # interleaved, so that machine load hits all alike
        for key, fn in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    w = {k: min(v) for k, v in wall.items()}
    c = {k: min(v) for k, v in cpu.items()}
    base, ours = c["baseline"], c["ours"]
    figures = {
        "runs": N_RUNS,
        "JSON files (baseline)": len(files),
        "jsonl logs (baseline)": len(logs),
        "CPU s json.load loop": c["baseline"],
        "CPU s json.load loop, files load_runs parses": c["strict"],
        "CPU s load_runs": c["ours"],
        "wall s load_runs": w["ours"],
        "ratio load_runs / json.load loop (CPU)": c["ours"] / c["baseline"],
        "ratio load_runs / strict loop (CPU)": c["ours"] / c["strict"],
        "ratio load_runs / json.load loop (wall)": w["ours"] / w["baseline"],
        "ms per run (load_runs, CPU)": 1e3 * c["ours"] / N_RUNS,
    }
    benchmark.pedantic(lambda: _ours(outputs), rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(json.dumps(benchmark.extra_info, indent=2))
    assert w["ours"] < 5.0
    assert ours / base <= 2.0
