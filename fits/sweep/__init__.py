"""Fresh SFT sweeps: a grid of (difficulty, budget, seed, budget mode) runs, local or on Ray.

Modules (private, one job each): ``_spec`` (the sweep spec file and its validation, constraints
as data), ``_tasks`` (the synthetic task or a dataset with a difficulty column), ``_bases``
(the base model: synthetic, any HF folder, SmolLM2 offline), ``_plan`` (cells and run ids),
``_evaluate`` (loss and exact-answer accuracy), ``_train`` (one run with
``transformers.Trainer``), ``_runner`` (resumable run folders), ``_backends`` (local and Ray),
``_status`` (done / running / failed / pending), ``_api`` (``run_sweep``) and ``_charts``
(plots of sweeps and of the theory terms). The public names are exported from :mod:`fits`.
"""
