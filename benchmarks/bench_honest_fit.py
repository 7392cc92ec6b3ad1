"""Benchmark (issue 13): what the lack-of-fit test and the data's own d* add to a fit.

Run with ``python -m pytest benchmarks/bench_honest_fit.py --benchmark-enable -s``.

Data: runs simulated from the McAllester/power model (``tests.fits._sim``), 5 difficulties x
4 budgets x 3 seeds (60 runs), inverse-variance weights, as ``tradeoff fit`` sees them.

- the fit: :func:`fits.fit_tradeoff` with its defaults (1,000 bootstrap refits, cross-validation
  and baselines), which now includes both checks;
- the checks alone, on the same data and core fit: :func:`fits.estimate.lack_of_fit` (999
  parametric-bootstrap draws of the null, weights re-estimated per draw, linearised refits)
  and :func:`fits.estimate.model_free_dstar` (1,000 seed resamples).

Goal: the checks add at most 10% to the fit. Both are timed interleaved, best of 5.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from benchmarks._common import best_time
from fits import ModelSpec, TradeoffModel, fit_tradeoff, prepare_data
from fits.estimate import fit_core, lack_of_fit, model_free_dstar
from tests.fits._sim import simulate_runs

ROUNDS = 5


@pytest.fixture(scope="module")
def runs():
    return simulate_runs(0)


def test_checks_add_at_most_ten_percent(benchmark, runs):
    data = prepare_data(runs)
    core = fit_core(TradeoffModel.for_data(ModelSpec(), data), data)

    def checks():
        lack_of_fit(core, data, rng=1)
        model_free_dstar(data, n_resamples=1000, rng=1)

    def fit(**options):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_tradeoff(runs, **options)

    t_checks = t_fit = t_lean = np.inf
    for _ in range(ROUNDS):  # interleaved, so all see the same machine load
        t_checks = min(t_checks, best_time(checks, 1))
        t_fit = min(t_fit, best_time(fit, 1))
        t_lean = min(t_lean, best_time(lambda: fit(cv=False, baselines=False), 1))
    share = t_checks / (t_fit - t_checks)
    share_lean = t_checks / (t_lean - t_checks)
    print(
        f"\nlack of fit + model-free d*: {t_checks * 1e3:.1f} ms; fit with defaults (1,000 "
        f"bootstraps, CV, baselines; checks included) {t_fit * 1e3:.0f} ms: +{share:.1%}; "
        f"fit with 1,000 bootstraps only {t_lean * 1e3:.0f} ms: +{share_lean:.1%}"
    )
    benchmark.extra_info.update(
        fit_s=t_fit, fit_bootstrap_only_s=t_lean, checks_s=t_checks, share=share,
        share_bootstrap_only=share_lean,
    )
    benchmark.pedantic(checks, rounds=3, iterations=1)
    assert share_lean <= 0.10
