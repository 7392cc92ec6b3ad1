"""Fresh SFT sweeps: a grid of (difficulty, budget, seed) cells, run locally or on Ray.

Modules (private, one job each): ``_spec`` (the sweep spec file and its validation),
``_plan`` (cells and run ids), ``_tokenize`` (prompt/completion features), ``_evaluate``
(loss and exact-answer accuracy), ``_train`` (one run with ``transformers.Trainer``),
``_runner`` (resumable run folders), ``_status`` (done / pending / failed), ``_backends``
(local and Ray). The public names are exported from :mod:`fits`.
"""
