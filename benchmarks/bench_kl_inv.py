"""kl_inv_upper on 10^6 (q, c) pairs against two baselines measured in the same process.

Run with ``python -m pytest benchmarks/bench_kl_inv.py --benchmark-enable -s``.

* brentq: scipy's ``brentq`` element by element (a subsample of 2000 pairs, compared per
  element). Goal: kl_inv_upper at least 1000x faster per element.
* kl evaluations: one vectorised ``kl_bernoulli`` pass over the same arrays (and, for
  reference, the plainest numpy kl, ``xlogy(q, q/p) + xlogy(1-q, (1-q)/(1-p))``). Goal: one
  inversion at full precision costs at most 15 kl evaluations.

The ratios go to ``benchmark.extra_info`` and are printed. Only loose floors are asserted (a
regression guard, not a timing test): absolute times on a shared machine mean little.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from benchmarks._common import best_time
from benchmarks.conftest import BRENTQ_SAMPLE, brentq_kl_inv_upper
from pacbound import kl_bernoulli, kl_inv_lower, kl_inv_upper


def _plain_kl(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    return xlogy(q, q / p) + xlogy(1.0 - q, (1.0 - q) / (1.0 - p))


def test_kl_inv_upper_vs_brentq(benchmark, qc_pairs) -> None:
    q, c = qc_pairs
    out = benchmark.pedantic(kl_inv_upper, args=(q, c), rounds=5, iterations=1)
    t_vec = best_time(lambda: kl_inv_upper(q, c)) / q.size
    qs, cs = q[:BRENTQ_SAMPLE].tolist(), c[:BRENTQ_SAMPLE].tolist()

    def brentq_loop() -> list[float]:
        return [brentq_kl_inv_upper(a, b) for a, b in zip(qs, cs, strict=True)]

    t_brent = best_time(brentq_loop, repeats=2) / BRENTQ_SAMPLE
    ref = np.array(brentq_loop())
    ratio = t_brent / t_vec
    benchmark.extra_info.update(
        {
            "ns_per_element": t_vec * 1e9,
            "brentq_us_per_element": t_brent * 1e6,
            "speedup_vs_brentq": ratio,
            "goal_speedup": 1000.0,
            "max_abs_diff_vs_brentq": float(np.max(np.abs(out[:BRENTQ_SAMPLE] - ref))),
        }
    )
    print(
        f"\nkl_inv_upper: {t_vec * 1e9:.1f} ns/element; brentq: {t_brent * 1e6:.1f} us/element;"
        f" speedup {ratio:.0f}x (goal 1000x)"
    )
    assert np.max(np.abs(out[:BRENTQ_SAMPLE] - ref)) < 1e-12
    assert ratio > 100.0


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
