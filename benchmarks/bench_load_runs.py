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
- baseline: ``json.load`` of every JSON file the loader reads (the root ``trainer_state.json``,
  ``all_results.json``, ``adapter_config.json``) plus ``json.loads`` of each line of
  ``trainer_log.jsonl``, in a Python loop over the known paths (no discovery).

Goals: under 5 s for the 1,000 folders on one core, and at most 2x the baseline. Both are
timed interleaved, best of 5, single-threaded Python.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from benchmarks._common import best_time
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
    times: dict[str, list[float]] = {"baseline": [], "ours": []}
    for _ in range(5):  # interleaved, so that machine load hits both alike
        times["baseline"].append(best_time(lambda: json_load_loop(files, logs), 1))
        times["ours"].append(best_time(lambda: _ours(outputs), 1))
    base, ours = min(times["baseline"]), min(times["ours"])
    figures = {
        "runs": N_RUNS,
        "JSON files (baseline)": len(files),
        "jsonl logs (baseline)": len(logs),
        "s json.load loop": base,
        "s load_runs": ours,
        "ratio load_runs / json.load loop": ours / base,
        "ms per run (load_runs)": 1e3 * ours / N_RUNS,
    }
    benchmark.pedantic(lambda: _ours(outputs), rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(json.dumps(benchmark.extra_info, indent=2))
    assert ours < 5.0
    assert ours / base <= 2.0
