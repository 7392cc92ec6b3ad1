"""Benchmark of :func:`fits.fit_tradeoff` against the number of runs, with a continuous difficulty
(issue 15, item 11).

Run with ``python -m pytest benchmarks/bench_fit_scaling.py --benchmark-enable -s``.

Data (``tests.fits._sim_continuous``): N = 100, 1,000 and 10,000 runs, each with its own
difficulty drawn uniformly in [2, 8] and a budget drawn among 64, 256, 1024, 4096 and 16384
(one seed per run), so that nearly every (d, n) pair is distinct. The fit runs with its
defaults: the difficulty quantile-binned within each budget into at most 12 cells, 1,000
bootstrap refits, the baselines, the lack-of-fit test, and cross-validation over budgets
(5 leave-one-budget-out and 3 forward folds, each warm-started at the full fit's optimum, with
200 bootstrap refits of its own).

Reported (printed and in ``extra_info``): wall and CPU time per N (best of the rounds), the
cells the runs were aggregated into, and how the time grows (the exponent k of t ~ N^k between
successive N). At 10,000 runs also ``n_resamples=0`` and ``n_resamples=0, cv=False,
baselines=False``, the settings of the issue's figures (310 s and 2.5 s before binning and warm
starts). Goal: at most 15 s for 10,000 runs with the defaults on a 2-core machine.
"""

from __future__ import annotations

import math
import time

import pytest

from fits import fit_tradeoff
from tests.fits._sim_continuous import simulate_continuous_runs

SIZES = (100, 1_000, 10_000)
GOAL_S = 15.0
_TIMES: dict[int, float] = {}


def _timed(fn, rounds: int) -> tuple[float, float, object]:
    """Best wall and CPU time over ``rounds`` calls, and the last result."""
    wall, cpu, out = math.inf, math.inf, None
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, out


@pytest.mark.parametrize("n_runs", SIZES)
def test_fit_scaling_continuous_difficulty(benchmark, n_runs):
    runs = simulate_continuous_runs(n_runs, seed=0)
    fit_tradeoff(simulate_continuous_runs(100, seed=1))  # warm the imports
    result = benchmark.pedantic(lambda: fit_tradeoff(runs), rounds=1, iterations=1)
    wall, cpu, result = _timed(lambda: fit_tradeoff(runs), rounds=2)
    _TIMES[n_runs] = wall
    info = {
        "runs": n_runs,
        "cells": result.data.n_cells,
        "wall_s": wall,
        "cpu_s": cpu,
        "bootstrap": result.draws.method if result.draws is not None else None,
    }
    smaller = [k for k in _TIMES if k < n_runs]
    if smaller:
        prev = max(smaller)
        info[f"growth_exponent_from_{prev}"] = math.log(wall / _TIMES[prev]) / math.log(
            n_runs / prev
        )
    if n_runs == max(SIZES):
        for label, options in (
            ("n_resamples=0", {"n_resamples": 0}),
            (
                "n_resamples=0,no_cv,no_baselines",
                {"n_resamples": 0, "cv": False, "baselines": False},
            ),
        ):
            w, _, _ = _timed(lambda o=options: fit_tradeoff(runs, **o), rounds=1)
            info[f"wall_s[{label}]"] = w
    benchmark.extra_info.update(info)
    print(f"\nfit_tradeoff on {n_runs} runs with a continuous difficulty (defaults):")
    for key, value in info.items():
        print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    assert result.data.n_cells <= 12 * 5
    if n_runs == max(SIZES):
        assert wall <= GOAL_S
