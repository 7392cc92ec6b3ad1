"""The training examples of a sweep's finished runs, with their difficulty scores.

The subsets a sweep trains on are deterministic functions of its spec (task, difficulty, n,
seed), so they are regenerated here rather than stored twice. The table is what
:func:`fits.threshold_robustness` (``tradeoff fit --examples``) needs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fits.sweep._runner import _context, is_complete, load_plan

__all__ = ["sweep_examples"]


def sweep_examples(sweep: str | Path) -> pd.DataFrame:
    """One row per (complete run, training example): ``run_id``, ``example``, ``score``.

    Parameters
    ----------
    sweep : path
        A sweep folder (written by :func:`fits.sweep.run_sweep`).

    Returns
    -------
    DataFrame
        ``score`` is the example's difficulty (the op count for the synthetic task, the
        difficulty column for a dataset); ``example`` its index in the run's training set.
        Runs that are not complete are left out.
    """
    plan = load_plan(sweep)
    task, _test, _base, diffs = _context(plan)
    rows = []
    for run in plan.runs:
        if not is_complete(plan.root, run.run_id):
            continue
        records = task.train_records(diffs[run.difficulty_label], run.n, run.seed)
        rows += [
            {"run_id": run.run_id, "example": i, "score": r.difficulty}
            for i, r in enumerate(records)
        ]
    return pd.DataFrame(rows, columns=["run_id", "example", "score"])
