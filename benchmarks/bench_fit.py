"""Benchmark of the tradeoff fit (issue 5): one fit plus 1000 bootstrap refits, against a naive
multistart ``scipy.optimize.curve_fit`` on the same data, measured in the same process.

Run with ``python -m pytest benchmarks/bench_fit.py --benchmark-enable -s``.

Data: runs simulated from the McAllester/power model (``tests.fits._sim``), 5 difficulties x
5 budgets x 3 seeds (75 runs), inverse-variance weights. Both sides fit the same weighted
least-squares objective ``sum_i w_i (r_i - f_i)^2`` over the runs, with the same bounds
(shapes inside the model's bounds, A, B >= 0), on the same bootstrap draws (seeds resampled
within cells, weights re-estimated per draw).

- ours: :func:`fits.estimate._core.fit_core` (grid + batched pattern search + Nelder–Mead) and
  :func:`fits.estimate._bootstrap.run_bootstrap` (vectorised grid for all draws, warm start plus
  restarts, batched Levenberg–Marquardt);
- naive: for the full data and for each draw, ``curve_fit`` (trf, bounds) from 8 starts (a
  scrambled Sobol design over the shape bounds), keeping the best. It is timed on the full fit
  and the first ``NAIVE_DRAWS`` draws, and its per-draw time is scaled to 1000 draws.

Reported (printed and in ``extra_info``): both times, the ratio (goal >= 5), and the objectives:
the full-data RSS of both, and per draw the relative excess of ours over the naive best
(goal: <= 0 up to rounding, i.e. ours equal or lower).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.stats import qmc

from fits import ModelSpec, TradeoffModel, prepare_data
from fits.estimate._bootstrap import resample, run_bootstrap
from fits.estimate._core import fit_core
from fits.model._cells import inverse_variance_weights
from tests.fits._sim import simulate_runs

N_RESAMPLES = 1000
NAIVE_DRAWS = 100
NAIVE_STARTS_LOG2 = 3  # 8 starts
BUDGETS = (64, 256, 1024, 4096, 16384)
D_LEVELS = (2.0, 3.0, 4.0, 6.0, 8.0)


@pytest.fixture(scope="module")
def setup():
    runs = simulate_runs(0, d_levels=D_LEVELS, budgets=BUDGETS, seeds=3, noise=0.01)
    data = prepare_data(runs)
    model = TradeoffModel.for_data(ModelSpec(), data)
    return data, model


def _model_fn(d_ref: float):
    def f(x, g, b, A, B, E):
        d, n = x
        return A * (d / d_ref) ** (g / 2) / np.sqrt(2 * n) + B * (d / d_ref) ** (-b) + E

    return f


def _naive(model: TradeoffModel, d, n, r, w, starts) -> tuple[np.ndarray, float]:
    """Best of ``starts`` curve_fit runs (trf with bounds) on one data set: params, weighted RSS."""
    f = _model_fn(model.d_ref)
    lo = [*np.exp(model.lo), 0.0, 0.0, -np.inf]
    hi = [*np.exp(model.hi), np.inf, np.inf, np.inf]
    best, best_rss = None, np.inf
    for g0, b0 in starts:
        p0 = [g0, b0, 1.0, 0.1, float(np.mean(r))]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                p, _ = curve_fit(
                    f,
                    (d, n),
                    r,
                    p0=p0,
                    sigma=1 / np.sqrt(w),
                    bounds=(lo, hi),
                    method="trf",
                    maxfev=4000,
                )
        except RuntimeError:  # no convergence from this start
            continue
        rss = float(np.sum(w * (r - f((d, n), *p)) ** 2))
        if rss < best_rss:
            best, best_rss = p, rss
    return best, best_rss


def _row_rss(model, theta, amps, d, n, r, w):
    pred = model.predict(theta, amps, d, n)
    return np.sum(w * (r - pred) ** 2, axis=-1)


def test_fit_and_bootstrap_vs_multistart_curve_fit(benchmark, setup):
    data, model = setup
    d = data.runs["difficulty"].to_numpy(float)
    n = data.runs["n"].to_numpy(float)

    def ours():
        core = fit_core(model, data)
        draws = run_bootstrap(
            model,
            data,
            core.theta,
            core.fitted_cells,
            n_resamples=N_RESAMPLES,
            method="seeds",
            rng=np.random.default_rng(0),
        )
        return core, draws

    core, draws = benchmark.pedantic(ours, rounds=3, iterations=1, warmup_rounds=1)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ours()
        times.append(time.perf_counter() - t0)
    t_ours = min(times)

    # the same draws as run_bootstrap made (same generator, same first call)
    r_draws, _, _ = resample(
        data, "seeds", N_RESAMPLES, np.random.default_rng(0), core.fitted_cells
    )
    w_draws = inverse_variance_weights(r_draws, data.cell_of_run, data.n_cells)
    sobol = qmc.Sobol(2, scramble=True, seed=0).random_base2(NAIVE_STARTS_LOG2)
    starts = np.exp(model.lo + sobol * (model.hi - model.lo))

    t0 = time.perf_counter()
    _, naive_full_rss = _naive(model, d, n, data.r, data.w, starts)
    t_naive_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_rss = np.array(
        [_naive(model, d, n, r_draws[k], w_draws[k], starts)[1] for k in range(NAIVE_DRAWS)]
    )
    t_naive_draw = (time.perf_counter() - t0) / NAIVE_DRAWS
    t_naive = t_naive_full + t_naive_draw * N_RESAMPLES

    ours_full_rss = core.rss
    ours_rss = _row_rss(
        model,
        draws.theta[:NAIVE_DRAWS],
        draws.amps[:NAIVE_DRAWS],
        d,
        n,
        r_draws[:NAIVE_DRAWS],
        w_draws[:NAIVE_DRAWS],
    )
    excess = (ours_rss - naive_rss) / naive_rss
    ratio = t_naive / t_ours
    info = {
        "time_ours_s": t_ours,
        f"time_naive_s (scaled from {NAIVE_DRAWS} draws)": t_naive,
        "ratio": ratio,
        "rss_full_ours": ours_full_rss,
        "rss_full_naive": naive_full_rss,
        "draw_rss_rel_excess_max": float(excess.max()),
        "draw_rss_rel_excess_median": float(np.median(excess)),
        "draws_ours_lower_or_equal": float(np.mean(excess <= 1e-8)),
        "draws_ours_lower_by_1e-6": float(np.mean(excess < -1e-6)),
    }
    benchmark.extra_info.update(info)
    print("\nfit + 1000 bootstrap refits vs naive multistart curve_fit:")
    for key, value in info.items():
        print(f"  {key}: {value:.6g}")
    assert ours_full_rss <= naive_full_rss * (1 + 1e-8)
    assert np.mean(excess <= 1e-8) >= 0.99
    assert ratio >= 5.0
