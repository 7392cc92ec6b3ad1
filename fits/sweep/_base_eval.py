"""The base model scored on a sweep's test set, beside its runs (``<sweep>/base_eval.json``).

A synthetic base records its own evaluation when it is pre-trained (``pretrain_meta.json``);
a base the sweep did not pre-train (a real LM learning the synthetic task) has none, so the
comparisons "did fine-tuning beat the base?" and "did it learn its own training
distribution?" need the base scored here, with the sweep's own evaluation code, test set,
rendering (``task.chat``) and decoding limit. The file uses the runs' metric names
(``eval_test_accuracy``, ``eval_ops<k>_accuracy``, ``eval_ops<k>_n``, ...).
"""

from __future__ import annotations

import time
from pathlib import Path

BASE_EVAL_FILE = "base_eval.json"

__all__ = ["BASE_EVAL_FILE", "evaluate_sweep_base"]


def evaluate_sweep_base(sweep: str | Path, *, overwrite: bool = False) -> dict:
    """Score the sweep's base on its test set and write ``<sweep>/base_eval.json``.

    Parameters
    ----------
    sweep : path
        A sweep folder (``plan.json``, written by :func:`fits.sweep.run_sweep`).
    overwrite : bool
        Score again even when the file exists (default: return the saved metrics).

    Returns
    -------
    dict
        ``eval_<slice>_{loss,accuracy,n}`` for the test slices, ``eval_seconds``, ``base_model``.
    """
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fits.sweep._runner import _context, load_plan
    from fits.sweep._train import _device, evaluate_records
    from pacbound.support import write_json

    plan = load_plan(sweep)
    out = plan.root / BASE_EVAL_FILE
    if out.is_file() and not overwrite:
        return json.loads(out.read_text(encoding="utf-8"))
    task, test, base, diffs = _context(plan)
    spec = plan.spec
    t0 = time.perf_counter()
    torch.set_num_threads(spec["resources.threads_per_run"])
    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = model.to(_device(spec)).eval()
    metrics, _ = evaluate_records(
        model,
        tok,
        task,
        test,
        task.slices(test, next(iter(diffs.values()))),
        batch_size=spec["eval.batch_size"],
        accuracy=spec["eval.accuracy"],
    )
    result = {f"eval_{k}": v for k, v in metrics.items()}
    result["eval_seconds"] = time.perf_counter() - t0
    result["base_model"] = str(base)
    write_json(out, result)
    return result
