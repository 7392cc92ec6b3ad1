"""The grid of a sweep: one planned run per (difficulty, budget n, seed, budget mode).

A run's id is readable and content-addressed::

    <difficulty label>-n<n>-s<seed>-<mode>-<hash>

where ``hash`` is the first 10 hex digits of the SHA-256 of the canonical JSON of the cell,
the per-run config (every spec field that changes what a run computes), the base model's
fingerprint, the task's fingerprint and the runner version. The same cell under the same
config always gets the same id, so a rerun recognises finished runs; any change of config gives
new ids.

Budget modes: ``epochs`` trains ``budget.epochs`` passes over the n examples (steps grow with
n, the usual practice); ``steps`` trains ``budget.steps`` optimiser steps whatever n (the
control that separates sample size from compute).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

from fits.sweep._spec import SweepSpec
from fits.sweep._tasks import Difficulty

__all__ = ["RUNNER_VERSION", "PlannedRun", "plan_runs"]

RUNNER_VERSION = 1


@dataclass(frozen=True)
class PlannedRun:
    """One run of the grid.

    Attributes
    ----------
    run_id : str
        Folder name under ``<sweep>/runs/``.
    difficulty_label : str
    difficulty : float
    n : int
        Training examples.
    seed : int
    budget_mode : str
        ``"epochs"`` or ``"steps"``.
    epochs : float
        Passes over the data (``steps * batch / n`` in steps mode).
    steps : int
        Optimiser steps.
    """

    run_id: str
    difficulty_label: str
    difficulty: float
    n: int
    seed: int
    budget_mode: str
    epochs: float
    steps: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PlannedRun:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def __str__(self) -> str:
        return (
            f"{self.run_id}: {self.difficulty_label} (d={self.difficulty:g}), n={self.n}, "
            f"seed {self.seed}, {self.budget_mode} ({self.steps} steps, {self.epochs:g} epochs)"
        )


def _steps_for(n: int, spec: SweepSpec, mode: str) -> tuple[float, int]:
    """(epochs, optimiser steps) of a run, counted as ``transformers.Trainer`` counts them."""
    batch, accum = spec["train.batch_size"], spec["train.grad_accum"]
    batches = math.ceil(n / batch)
    per_epoch = max(batches // accum + int(batches % accum > 0), 1)
    if mode == "steps":
        steps = spec["budget.steps"]
        return steps / per_epoch, steps
    epochs = spec["budget.epochs"]
    return epochs, max(1, math.ceil(epochs * per_epoch))


def plan_runs(
    spec: SweepSpec, difficulties: list[Difficulty], base_fp: dict, task_fp: dict
) -> list[PlannedRun]:
    """Every run of the grid, in a stable order (mode, difficulty, n, seed)."""
    payload = {
        "config": spec.hash_payload(),
        "base": base_fp,
        "task": task_fp,
        "runner_version": RUNNER_VERSION,
    }
    runs = []
    for mode in spec["budget.modes"]:
        for diff in difficulties:
            for n in sorted(spec["budget.n"]):
                for seed in spec["budget.seeds"]:
                    epochs, steps = _steps_for(n, spec, mode)
                    cell = {
                        "difficulty_label": diff.label,
                        "difficulty": diff.value,
                        "n": n,
                        "seed": seed,
                        "budget_mode": mode,
                    }
                    text = json.dumps({**payload, "cell": cell}, sort_keys=True, default=str)
                    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
                    run_id = f"{diff.label}-n{n}-s{seed}-{mode}-{digest}"
                    runs.append(
                        PlannedRun(run_id, diff.label, diff.value, n, seed, mode, epochs, steps)
                    )
    return runs
