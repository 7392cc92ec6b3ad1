"""Checkpoints -> numbers: weight statistics and Gaussian KL streamed from real checkpoints
(full or LoRA), difficulty scores, difficulty-conditioned losses, Gibbs risk and certificates.

Note: PyPI also has an unrelated package called ``measurement`` (a units library); this one is
installed by ``sft-tradeoff``.
"""

from __future__ import annotations

from measurement._exports_data import EXPORTS as _EXPORTS_DATA
from measurement._exports_weights import EXPORTS as _EXPORTS_WEIGHTS
from pacbound.support import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {**_EXPORTS_WEIGHTS, **_EXPORTS_DATA})
