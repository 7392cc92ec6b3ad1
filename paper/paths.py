"""Paths and constants shared by the paper scripts (``paper/build.py`` and its helpers)."""

from __future__ import annotations

from pathlib import Path

PAPER = Path(__file__).resolve().parent
ROOT = PAPER.parent
RUNS = PAPER / "runs"
RESULTS = PAPER / "results"
FIGURES = PAPER / "figures"
#: The report's sweeps: name -> the run folders under paper/runs pooled into it (a sweep whose
#: extra seeds were run later, from their own spec, is one sweep in the report and in its fits).
#: The calibrated sweeps (paper/calibration/CRITERION.md) are the main body.
MAIN = {
    "calibrated-epochs": (
        "calibrated-epochs",
        "calibrated-epochs-seeds34",
        "calibrated-epochs-n4096",
        "calibrated-epochs-n4096-d356",
        "calibrated-epochs-n4096-seeds34",
    ),
    "calibrated-steps": (
        "calibrated-steps",
        "calibrated-steps-seeds34",
        "calibrated-steps-n4096",
        "calibrated-steps-n4096-seeds34",
    ),
}
#: The budgets fixed in advance for the calibrated sweeps (paper/calibration/CRITERION.md);
#: n = 4096 was added later (its specs say when and why), so the claim's verdict is also given
#: on these budgets alone.
PREREGISTERED_BUDGETS = (64, 256, 1024)
#: The real-LM sweep (SmolLM2-135M, LoRA, the synthetic task rendered as chat).
LLM = {"smollm2-lora": ("smollm2-lora",)}
#: The first sweeps (base pre-trained on ops 1-4 of 8): the report's appendix.
OLD = {"epochs": ("epochs",), "steps": ("steps",), "bins": ("bins",)}
SWEEPS = {**MAIN, **LLM, **OLD}
TARGETS = ("error", "loss")
#: Fit forms, fixed before looking at the paper sweeps: the gap term uses the KL measured from
#: the weights (K = ||Δw||²) with the extrapolation term as a power law or an exponential.
MODELS = ("sq_dist", "sq_dist,exp")


def finished_folders(name: str) -> list[Path]:
    """The run folders of sweep ``name`` that hold at least one finished run (``run_meta.json``)."""
    return [
        RUNS / folder
        for folder in SWEEPS[name]
        if any((RUNS / folder / "runs").glob("*/run_meta.json"))
    ]


def available(names) -> list[str]:
    """The sweeps among ``names`` with at least one finished run."""
    return [name for name in names if finished_folders(name)]
