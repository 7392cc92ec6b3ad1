"""Exact PAC-Bayes bounds, numeric (numpy/scipy, torch autograd) and symbolic (sympy).

The numeric functions broadcast over arrays in float64 and return frozen result objects that
carry every piece of the bound (complexity term, the delta spent by each union bound, the grid
used), so that the confidence of every number is auditable. Importing this package does not
import torch or sympy; they load when a function that needs them is first used.
"""

from __future__ import annotations

from pacbound._exports_numeric import EXPORTS as _EXPORTS_NUMERIC
from pacbound._exports_symbolic import EXPORTS as _EXPORTS_SYMBOLIC
from pacbound.support._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {**_EXPORTS_NUMERIC, **_EXPORTS_SYMBOLIC})
