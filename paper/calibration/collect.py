"""Summarise synthetic sweep folders into small CSV/JSON tables beside this file.

For each sweep folder given (default: the calibration and calibrated sweeps under paper/runs/),
writes ``<name>-runs.csv`` (one row per run: test accuracy, in-distribution error on
D_train(d) and the base's on the same mixture), ``<name>-cells.csv`` (seed means per
(mode, n, d)) and ``<name>-pbest.csv`` (P(d is best | n) by seed resampling, 2000 draws), and
prints the regime table. Usage: ``python paper/calibration/collect.py paper/runs/calib-lr1e-3``;
``--as NAME DIR DIR ...`` pools the runs of several folders of one base under NAME.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fits.experiments import best_difficulty_probabilities, sweep_regime_table

HERE = Path(__file__).resolve().parent


def collect(sweep: Path | list[Path], name: str | None = None) -> None:
    import dataclasses

    import pandas as pd

    folders = sweep if isinstance(sweep, list) else [sweep]
    tables = [sweep_regime_table(f) for f in folders]
    table = tables[0]
    if any(t.base_per_op != table.base_per_op for t in tables):
        raise SystemExit(f"{folders}: the sweeps were fine-tuned from different bases.")
    table = dataclasses.replace(table, runs=pd.concat([t.runs for t in tables], ignore_index=True))
    name = name or folders[0].name
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
    args = sys.argv[1:]
    if args[:1] == ["--as"]:
        collect([Path(a) for a in args[2:]], args[1])
    else:
        for arg in args:
            collect(Path(arg))
