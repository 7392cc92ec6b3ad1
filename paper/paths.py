"""Paths and constants shared by the paper scripts (``paper/build.py`` and its helpers)."""

from __future__ import annotations

from pathlib import Path

PAPER = Path(__file__).resolve().parent
ROOT = PAPER.parent
RUNS = PAPER / "runs"
RESULTS = PAPER / "results"
FIGURES = PAPER / "figures"
SWEEPS = ("epochs", "steps", "bins")
TARGETS = ("error", "loss")
#: Fit forms, fixed before looking at the paper sweeps: the gap term uses the KL measured from
#: the weights (K = ||Δw||²) with the extrapolation term as a power law or an exponential.
MODELS = ("sq_dist", "sq_dist,exp")
