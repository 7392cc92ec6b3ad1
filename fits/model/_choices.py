"""The allowed values of the model's settings, declared once (no heavy imports).

:class:`fits.ModelSpec`, :func:`fits.prepare_data` and :class:`fits.FitConfig` (whose
``tradeoff fit`` options list them) all read these tuples.
"""

from __future__ import annotations

__all__ = ["COMPLEXITIES", "EXTRAPS", "GAPS", "RATES", "TARGETS", "TRAIN_MODELS", "WEIGHTINGS"]

COMPLEXITIES = ("power", "exp", "kl", "sq_dist")
"""K(d): parametric power or exponential, or measured per run (``kl`` nats, ``sq_dist``)."""
EXTRAPS = ("power", "exp")
"""T(d), the extrapolation term."""
GAPS = ("mcallester", "mcallester_exact", "kl", "catoni")
"""Forms of the generalization gap (``mcallester_exact`` keeps ln(2 sqrt(n)/delta) in the root)."""
RATES = ("sqrt", "free")
"""Budget dependence of the gap: n^-1/2, or a fitted n^-nu."""
TARGETS = ("loss", "error")
"""Metric fitted: cross-entropy loss, or the 0-1 error 1 - accuracy."""
WEIGHTINGS = ("auto", "inverse-variance", "none")
"""Weights of the (d, n) cells."""
TRAIN_MODELS = ("linear", "interpolate", "flat")
"""How the training metric enters d*: a line in d, piecewise linear, or the budget mean."""
