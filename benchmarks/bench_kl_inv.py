"""kl_inv_upper on 10^6 (q, c) pairs against two baselines measured in the same process.

Run with ``python -m pytest benchmarks/bench_kl_inv.py --benchmark-enable -s``.

* brentq: scipy's ``brentq`` element by element (a subsample of 2000 pairs, compared per
  element). Goal: kl_inv_upper at least 1000x faster per element. Reported three ways: as
  called (the compiled kernel on all available CPUs), on one thread (``PACBOUND_THREADS=1``),
  and the numpy passes (the fallback when the kernel is not built).
* kl evaluations: one vectorised ``kl_bernoulli`` pass over the same arrays (and, for
  reference, the plainest numpy kl, ``xlogy(q, q/p) + xlogy(1-q, (1-q)/(1-p))``). Goal: one
  inversion at full precision costs at most 15 kl evaluations.

The ratios go to ``benchmark.extra_info`` and are printed. Only loose floors are asserted (a
regression guard, not a timing test): absolute times on a shared machine mean little.
"""

from __future__ import annotations

import os

import numpy as np
from scipy.special import xlogy

from benchmarks._common import best_time
from benchmarks.conftest import BRENTQ_SAMPLE, brentq_kl_inv_upper
from pacbound import kl_bernoulli, kl_inv_lower, kl_inv_upper, kl_inverse_backend
from pacbound._kl_inverse_backend import thread_count, use_numpy_backend


def _plain_kl(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    return xlogy(q, q / p) + xlogy(1.0 - q, (1.0 - q) / (1.0 - p))


def _time_per_element(q: np.ndarray, c: np.ndarray, threads: str | None) -> float:
    """Best time per element of kl_inv_upper with PACBOUND_THREADS set to ``threads``."""
    before = os.environ.get("PACBOUND_THREADS")
    try:
        if threads is None:
            os.environ.pop("PACBOUND_THREADS", None)
        else:
            os.environ["PACBOUND_THREADS"] = threads
        return best_time(lambda: kl_inv_upper(q, c)) / q.size
    finally:
        if before is None:
            os.environ.pop("PACBOUND_THREADS", None)
        else:
            os.environ["PACBOUND_THREADS"] = before


def test_kl_inv_upper_vs_brentq(benchmark, qc_pairs) -> None:
    q, c = qc_pairs
    out = benchmark.pedantic(kl_inv_upper, args=(q, c), rounds=5, iterations=1)
    qs, cs = q[:BRENTQ_SAMPLE].tolist(), c[:BRENTQ_SAMPLE].tolist()

    def brentq_loop() -> list[float]:
        return [brentq_kl_inv_upper(a, b) for a, b in zip(qs, cs, strict=True)]

    # brentq is timed between the others, so that a slow spell of the machine hits both sides
    t_all = _time_per_element(q, c, None)
    t_brent = best_time(brentq_loop, repeats=2) / BRENTQ_SAMPLE
    t_one = _time_per_element(q, c, "1")
    with use_numpy_backend():
        t_numpy = best_time(lambda: kl_inv_upper(q, c), repeats=3) / q.size
    ref = np.array(brentq_loop())
    threads = thread_count(q.size)
    benchmark.extra_info.update(
        {
            "backend": kl_inverse_backend(),
            "ns_per_element": t_all * 1e9,
            "ns_per_element_one_thread": t_one * 1e9,
            "ns_per_element_numpy_passes": t_numpy * 1e9,
            "threads": threads,
            "brentq_us_per_element": t_brent * 1e6,
            "speedup_vs_brentq": t_brent / t_all,
            "speedup_vs_brentq_one_thread": t_brent / t_one,
            "speedup_vs_brentq_numpy_passes": t_brent / t_numpy,
            "goal_speedup": 1000.0,
            "max_abs_diff_vs_brentq": float(np.max(np.abs(out[:BRENTQ_SAMPLE] - ref))),
        }
    )
    print(
        f"\nkl_inv_upper ({kl_inverse_backend()}): {t_all * 1e9:.1f} ns/element on {threads}"
        f" thread(s), {t_one * 1e9:.1f} on one, numpy passes {t_numpy * 1e9:.1f};"
        f" brentq {t_brent * 1e6:.1f} us/element; speedup {t_brent / t_all:.0f}x"
        f" ({t_brent / t_one:.0f}x on one thread, numpy passes {t_brent / t_numpy:.0f}x;"
        " goal 1000x)"
    )
    assert np.max(np.abs(out[:BRENTQ_SAMPLE] - ref)) < 1e-12
    assert t_brent / t_all > 100.0


def test_kl_inv_vs_kl_evaluations(benchmark, qc_pairs) -> None:
    q, c = qc_pairs
    p = np.random.default_rng(7).uniform(0.0, 1.0, q.size)
    benchmark.pedantic(kl_inv_upper, args=(q, c), rounds=5, iterations=1)
    t_inv = best_time(lambda: kl_inv_upper(q, c))
    t_inv_lower = best_time(lambda: kl_inv_lower(q, c))
    t_kl = best_time(lambda: kl_bernoulli(q, p))
    t_plain = best_time(lambda: _plain_kl(q, p))
    benchmark.extra_info.update(
        {
            "kl_evaluations_per_inversion": t_inv / t_kl,
            "kl_evaluations_per_lower_inversion": t_inv_lower / t_kl,
            "plain_numpy_kl_evaluations_per_inversion": t_inv / t_plain,
            "goal_kl_evaluations": 15.0,
        }
    )
    print(
        f"\nkl_inv_upper = {t_inv / t_kl:.1f} kl_bernoulli passes"
        f" ({t_inv / t_plain:.1f} plain xlogy-kl passes); kl_inv_lower = "
        f"{t_inv_lower / t_kl:.1f} kl_bernoulli passes (goal <= 15)"
    )
    assert t_inv / t_kl <= 15.0
