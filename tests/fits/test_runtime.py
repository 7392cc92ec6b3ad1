"""Run-environment helpers."""

from __future__ import annotations

import numpy as np

from pacbound.support._progress import Progress, versions


def test_versions_and_silent_progress():
    v = versions()
    assert v["numpy"] == np.__version__ and {
        "python",
        "scipy",
        "pandas",
        "statsmodels",
        "sft-tradeoff",
    } <= set(v)
    with Progress(False) as bar:
        bar.stage("nothing shown")
    with Progress(True) as bar:
        bar.stage("shown on a terminal")
