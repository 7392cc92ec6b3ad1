"""The allowed values of the estimator's settings, declared once (no heavy imports)."""

from __future__ import annotations

__all__ = ["BOOTSTRAP_METHODS", "LOSSES"]

LOSSES = ("linear", "soft_l1", "huber")
"""Fit losses: least squares, or a robust loss with an inlier scale ``f_scale``."""
BOOTSTRAP_METHODS = ("auto", "seeds", "wild")
"""Bootstrap: ``seeds`` resamples runs within cells, ``wild`` flips residual signs."""
