"""Runs -> fitted tradeoff: loaders for logged runs, the tradeoff regression, d*(n) with
bootstrap intervals, plots and reports, data selection, fresh SFT sweeps and the demo.

Note: PyPI also has an unrelated package called ``fits`` (a FITS-file loader); this one is
installed by ``sft-tradeoff``. The ``tradeoff`` command is the stable entry point.
"""

from __future__ import annotations

from fits._exports_fit import EXPORTS as _EXPORTS_FIT
from fits._exports_sweep import EXPORTS as _EXPORTS_SWEEP
from pacbound._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {**_EXPORTS_FIT, **_EXPORTS_SWEEP})
