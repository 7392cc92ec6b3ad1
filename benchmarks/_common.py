"""Helpers shared by the benchmarks: timing, and memory of a snippet run in a fresh process.

* :func:`best_time`: the minimum wall time over a few calls (the least disturbed by other
  jobs on a shared machine).
* :func:`run_memory_script`: run a Python snippet in a fresh interpreter (the repository on
  ``sys.path``) after :data:`MEMORY_PROBE`, and return the JSON object its last output line
  prints. The probe defines ``status()`` (``VmRSS``, ``VmHWM``, ``RssAnon`` and ``RssFile`` of
  ``/proc/self/status``, in bytes) and the context manager ``sampled(reset_hwm=False)``, which
  yields a dict that holds, after the block, ``before`` and ``after`` (``status()`` at its
  start and end) and ``peak_sampled`` (the peaks of ``RssAnon`` and ``VmRSS``, sampled every
  2 ms by a thread). ``reset_hwm`` first resets ``VmHWM`` to the current RSS.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

MEMORY_PROBE = r"""
import contextlib, json, sys, threading, time

def status():
    out = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    return out

@contextlib.contextmanager
def sampled(reset_hwm=False):
    if reset_hwm:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    record = {"before": status()}
    peak = {"RssAnon": 0, "VmRSS": 0}
    stop = threading.Event()
    def sample():
        while not stop.is_set():
            s = status()
            for k in peak:
                peak[k] = max(peak[k], s[k])
            time.sleep(0.002)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        stop.set()
        thread.join()
        record["after"] = status()
        record["peak_sampled"] = peak
"""


def best_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """Minimum wall time of ``repeats`` calls (the least disturbed by other processes)."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_memory_script(script: str, *args: object) -> dict[str, Any]:
    """Run :data:`MEMORY_PROBE` + ``script`` with ``args`` in a fresh interpreter; return the
    JSON object printed on its last output line."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE + script, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
