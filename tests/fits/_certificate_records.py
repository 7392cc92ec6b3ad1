"""A per-run certificate record (the fields ``RunCertificate.record`` writes that the sweep
summaries read), shared by the sweep-certificate and paper-build tests."""

from __future__ import annotations


def certificate_record(d, n, seed, cert, base, held, *, prior_held=0.2, base_held=0.5, n_held=64):
    return {
        "run_id": f"mix{d}-n{n}-s{seed}",
        "budget_mode": "epochs",
        "difficulty": float(d),
        "n": n,
        "seed": seed,
        "certificate": cert,
        "base_certificate": base,
        "held_out_error": held,
        "prior_held_out_error": prior_held,
        "base_held_out_error": base_held,
        "n_held_out": n_held,
        "n_bound": n // 2,
        "delta": 0.025,
    }
