"""Run-environment helpers for fits: library versions (recorded in fit.json) and progress."""

from __future__ import annotations

import platform
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Progress", "versions"]


def versions() -> dict[str, str]:
    import scipy
    import statsmodels

    from pacbound.support._environment import installed_version

    return {
        "sft-tradeoff": installed_version("sft-tradeoff") or "unknown",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "statsmodels": statsmodels.__version__,
    }


class Progress:
    """A rich progress line for the stages of a fit (silent when disabled)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            console = Console(stderr=True)  # stdout stays clean for --json
            if not console.is_terminal:  # no stray lines in logs and pipes
                return self
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                transient=True,
                console=console,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("fit", total=None)
        return self

    def stage(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=f"fit: {text}")

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
