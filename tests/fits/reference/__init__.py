"""Reference results for :mod:`fits`, computed independently of its code (statsmodels' style)."""
