"""Runs simulated from a known tradeoff model, for the fits tests.

The truth is the McAllester/power model of :mod:`fits.model._families` with ``d_ref = min(d)``:
``r = A x^(g/2) n^(-1/2) / sqrt(2) + B x^(-b) + E`` with ``x = d / d_ref``; the training loss is
``train0 + train_slope * d`` plus small noise, and the test loss is ``train + r`` plus noise.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

TRUTH = {"g": 2.0, "b": 1.0, "A": 2.0, "B": 0.215, "E": 0.1}
D_LEVELS = (2.0, 3.0, 4.0, 5.0, 6.0)
BUDGETS = (64, 256, 1024, 2048)


def true_dstar(
    n: float, *, g: float, b: float, A: float, B: float, d_ref: float, **_: float
) -> float:
    """The closed-form optimum of the true gap (training loss flat in d)."""
    x = (2.0 * math.sqrt(2.0) * b * B * math.sqrt(n) / (g * A)) ** (1.0 / (g / 2.0 + b))
    return d_ref * x


def simulate_runs(
    seed: int = 0,
    *,
    d_levels: tuple[float, ...] = D_LEVELS,
    budgets: tuple[int, ...] = BUDGETS,
    seeds: int = 3,
    noise: float = 0.01,
    train_slope: float = 0.0,
    truth: dict[str, float] | None = None,
) -> pd.DataFrame:
    """A runs table (canonical columns) simulated from the truth with Gaussian noise."""
    p = {**TRUTH, **(truth or {})}
    rng = np.random.default_rng(seed)
    d_ref = min(d_levels)
    rows = []
    for n in budgets:
        for d in d_levels:
            x = d / d_ref
            r = p["A"] * x ** (p["g"] / 2) / math.sqrt(2 * n) + p["B"] * x ** (-p["b"]) + p["E"]
            for s in range(seeds):
                train = 0.3 + train_slope * d + rng.normal(0.0, noise / 3)
                rows.append(
                    {
                        "run_id": f"d={d:g}_n={n}_seed={s}",
                        "difficulty": d,
                        "n": n,
                        "seed": s,
                        "train_loss": train,
                        "test_loss": train + r + rng.normal(0.0, noise),
                        "train_acc": 0.9,
                        "test_acc": 0.5,
                    }
                )
    return pd.DataFrame(rows)
