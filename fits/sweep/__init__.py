"""Fresh SFT sweeps: a grid of (difficulty, budget, seed, budget mode) runs, local or on Ray.

- ``_spec``: the sweep spec file (TOML/YAML) and its validation, constraints as data.
- ``_tasks``: what a run trains on: the synthetic task or a dataset with a difficulty column.
- ``_bases``: the base model: synthetic, any Hugging Face folder, SmolLM2 offline.
- ``_plan``: the grid of planned runs and their ids.
- ``_train``: one run with ``transformers.Trainer``, as a standard output folder.
- ``_runner``: resumable run folders (temporary folder, renamed when done).
- ``_backends``: local (one worker per GPU/core) and Ray.
- ``_status``: done / running / failed / pending.
- ``_examples``: the training examples of finished runs, with their scores.
- ``_api``: :func:`run_sweep`.
- ``_charts``: plots of sweeps and of the theory terms.
"""

from __future__ import annotations

from pacbound.support import lazy_exports

EXPORTS: dict[str, str] = {
    "SweepSpec": "fits.sweep._spec",
    "SpecError": "fits.sweep._spec",
    "load_spec": "fits.sweep._spec",
    "PlannedRun": "fits.sweep._plan",
    "SweepResult": "fits.sweep._api",
    "run_sweep": "fits.sweep._api",
    "SweepStatus": "fits.sweep._status",
    "sweep_status": "fits.sweep._status",
    "sweep_examples": "fits.sweep._examples",
    "evaluate_sweep_base": "fits.sweep._base_eval",
    "BASE_EVAL_FILE": "fits.sweep._base_eval",
    "theory_charts": "fits.sweep._charts",
    "sweep_charts": "fits.sweep._charts",
}
"""Public name -> the module that defines it (loaded on first use)."""

__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
