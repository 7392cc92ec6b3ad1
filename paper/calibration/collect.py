"""Summarise synthetic sweep folders into small CSV/JSON tables beside this file.

For each sweep folder given (default: the calibration and calibrated sweeps under paper/runs/),
writes ``<name>-runs.csv`` (one row per run: test accuracy, in-distribution error on
D_train(d) and the base's on the same mixture), ``<name>-cells.csv`` (seed means per
(mode, n, d)) and ``<name>-pbest.csv`` (P(d is best | n) by seed resampling, 2000 draws), and
prints the regime table. Usage: ``python paper/calibration/collect.py paper/runs/calib-lr1e-3``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fits.experiments import best_difficulty_probabilities, sweep_regime_table

HERE = Path(__file__).resolve().parent


def collect(sweep: Path) -> None:
    table = sweep_regime_table(sweep)
    name = sweep.name
    out = HERE / "tables"
    out.mkdir(exist_ok=True)
    table.runs.sort_values(["budget_mode", "n", "difficulty", "seed"]).to_csv(
        out / f"{name}-runs.csv", index=False, float_format="%.4f"
    )
    table.cells().to_csv(out / f"{name}-cells.csv", index=False, float_format="%.4f")
    pbest = best_difficulty_probabilities(table.runs, n_resamples=2000, seed=0)
    pbest.to_csv(out / f"{name}-pbest.csv", index=False, float_format="%.4f")
    (out / f"{name}-base.json").write_text(
        json.dumps(
            {
                "base_test_accuracy": table.base_test_accuracy,
                "base_per_op_accuracy": list(table.base_per_op),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"== {name}")
    print(table)
    print(pbest.to_string(index=False))


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        collect(Path(arg))
