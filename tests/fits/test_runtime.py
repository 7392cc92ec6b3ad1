"""Run-environment helpers: the versions recorded in fit.json and the progress line."""

from __future__ import annotations

import importlib.metadata
import platform

import numpy as np
import pandas as pd
import scipy
import statsmodels

from pacbound.support import Progress, library_versions


def test_versions_are_the_installed_ones():
    v = library_versions(["numpy", "scipy", "pandas", "statsmodels", "no-such-distribution-x"])
    assert v == {
        "sft-tradeoff": importlib.metadata.version("sft-tradeoff"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "statsmodels": statsmodels.__version__,
        "no-such-distribution-x": "not installed",
    }


def test_disabled_progress_writes_nothing(capfd):
    with Progress(False) as bar:
        bar.stage("nothing shown")
        assert bar._progress is None
    assert capfd.readouterr() == ("", "")


def test_progress_is_silent_off_a_terminal(capfd, monkeypatch):
    """Piped stderr (a log, CI): no progress line, nothing written to either stream."""
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    with Progress(True) as bar:
        bar.stage("not shown in a pipe")
        assert bar._progress is None
    assert capfd.readouterr() == ("", "")


def test_progress_shows_the_stage_on_a_terminal(capfd, monkeypatch):
    """On a terminal the stage text is drawn on stderr only (stdout stays clean for --json)."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    with Progress(True) as bar:
        assert bar._progress is not None
        bar.stage("bootstrap")
        bar._progress.refresh()
    out, err = capfd.readouterr()
    assert out == ""
    assert "fit: bootstrap" in err
