"""Experiments built on sweeps: theory against empirics, and the embedded demo.

- ``_theory``: every term of the bound per run and per (d, n), beside the data.
- ``_headroom``: how far each run's base-centred certificate is from non-vacuous, in nats of KL.
- ``_demo``: ``tradeoff demo``, the whole toolkit on an embedded default.
- ``_regime``: in-distribution error against the base's, and P(d is best) by seed resampling.
- ``_certify_sweep``: one cell certified with a learnt prior, a base-centred posterior and the
  base itself; and the demo's cheap per-run certificate (a learnt prior as a point mass).
- ``_sweep_certificates``: that certificate for every run of a sweep, with the test-set bound
  beside it and the bound minimiser against the empirical d*.
"""

from __future__ import annotations

from pacbound.support import lazy_exports

EXPORTS: dict[str, str] = {
    "SIGMA_GRID": "fits.experiments._theory",
    "TheoryConfig": "fits.experiments._theory",
    "TheoryResult": "fits.experiments._theory",
    "theory_for_sweep": "fits.experiments._theory",
    "nonvacuous_headroom": "fits.experiments._headroom",
    "DemoResult": "fits.experiments._demo",
    "demo_spec": "fits.experiments._demo",
    "run_demo": "fits.experiments._demo",
    "RegimeTable": "fits.experiments._regime",
    "best_difficulty_probabilities": "fits.experiments._regime",
    "in_distribution_error": "fits.experiments._regime",
    "sweep_regime_table": "fits.experiments._regime",
    "compression_run": "fits.experiments._compression_run",
    "CellCertificates": "fits.experiments._certify_sweep",
    "certify_cell": "fits.experiments._certify_sweep",
    "RunCertificate": "fits.experiments._certify_sweep",
    "certify_run": "fits.experiments._certify_sweep",
    "certify_on_fresh_samples": "fits.experiments._certify_sweep",
    "certify_sweep_runs": "fits.experiments._certify_sweep",
    "split_rows": "fits.experiments._certify_sweep",
    "CERT_DIR": "fits.experiments._sweep_certificates",
    "SweepCertificates": "fits.experiments._sweep_certificates",
    "certify_sweep": "fits.experiments._sweep_certificates",
    "summarise_certificates": "fits.experiments._sweep_certificates",
}
"""Public name -> the module that defines it (loaded on first use)."""

__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
