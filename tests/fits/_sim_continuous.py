"""Runs with a continuous difficulty, simulated from the truth of :mod:`tests.fits._sim`.

Each run draws its difficulty uniformly in ``d_range`` and its budget uniformly among
``budgets`` (one seed per run), so nearly every (d, n) pair is distinct: the shape of a sweep
over a continuous difficulty score rather than a designed grid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.fits._sim import TRUTH

BUDGETS = (64, 256, 1024, 4096, 16384)


def simulate_continuous_runs(
    n_runs: int,
    seed: int = 0,
    *,
    budgets: tuple[int, ...] = BUDGETS,
    d_range: tuple[float, float] = (2.0, 8.0),
    noise: float = 0.01,
    truth: dict[str, float] | None = None,
) -> pd.DataFrame:
    """A runs table of ``n_runs`` runs, d ~ U(d_range), n uniform over ``budgets``.

    The gap is the truth's ``A x^(g/2) / sqrt(2 n) + B x^(-b) + E`` with ``x = d / d_range[0]``,
    the training loss ``0.3`` plus noise of sd ``noise / 3``, and the test loss the training
    loss plus the gap plus noise of sd ``noise``.
    """
    p = {**TRUTH, **(truth or {})}
    rng = np.random.default_rng(seed)
    n = np.asarray(budgets, dtype=float)[rng.integers(0, len(budgets), n_runs)]
    d = rng.uniform(*d_range, n_runs)
    x = d / d_range[0]
    gap = p["A"] * x ** (p["g"] / 2) / np.sqrt(2 * n) + p["B"] * x ** (-p["b"]) + p["E"]
    train = 0.3 + rng.normal(0.0, noise / 3, n_runs)
    return pd.DataFrame(
        {
            "run_id": [f"run{i}" for i in range(n_runs)],
            "difficulty": d,
            "n": n.astype(int),
            "seed": 0,
            "train_loss": train,
            "test_loss": train + gap + rng.normal(0.0, noise, n_runs),
            "train_acc": 0.9,
            "test_acc": 0.5,
        }
    )
