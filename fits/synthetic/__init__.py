"""The controlled synthetic task: iGSM-like modular-arithmetic problems with a known difficulty.

A problem is a small dependency graph of named quantities, each defined from the previous one
by arithmetic modulo a small prime, plus a question about one quantity; the completion is the
step-by-step computation. Difficulty is the number of operations on the path to the asked
quantity. Every prompt has the same length (a distractor chain pads it), so a small RoPE model
sees the same relative distances at every difficulty.

- ``_generator``: problems, solutions and the checker that re-evaluates a chain.
- ``_vocab``: the word-level tokenizer (a real ``tokenizers`` model wrapped for transformers).
- ``_distributions``: difficulty as a training distribution (bins and mixtures over operation
  counts) and the exact TV distance to the test distribution.
- ``_data``: datasets on disk (JSONL or Parquet) and tokenisation for training.
- ``_evaluation``: the paper's decomposed evaluation (metrics per operation count).
- ``_model``: the base model's config, its hash and where it is cached.
- ``_pretrain``: pre-training the base on a range of operation counts.
"""

from __future__ import annotations

from pacbound.support import lazy_exports

EXPORTS: dict[str, str] = {
    "TaskFormat": "fits.synthetic._generator",
    "SyntheticProblem": "fits.synthetic._generator",
    "generate_problems": "fits.synthetic._generator",
    "check_problem": "fits.synthetic._generator",
    "solve_prompt": "fits.synthetic._generator",
    "answer_from_completion": "fits.synthetic._generator",
    "build_synthetic_tokenizer": "fits.synthetic._vocab",
    "OpsDistribution": "fits.synthetic._distributions",
    "ops_bin": "fits.synthetic._distributions",
    "ops_mixture": "fits.synthetic._distributions",
    "uniform_ops": "fits.synthetic._distributions",
    "tv_distance": "fits.synthetic._distributions",
    "stable_seed": "fits.synthetic._distributions",
    "sample_training_set": "fits.synthetic._data",
    "decomposed_test_set": "fits.synthetic._data",
    "write_problems": "fits.synthetic._data",
    "encode_problems": "fits.synthetic._data",
    "parse_ops_range": "fits.synthetic._data",
    "decomposed_metrics": "fits.synthetic._evaluation",
    "PretrainConfig": "fits.synthetic._model",
    "SyntheticModelConfig": "fits.synthetic._model",
    "find_synthetic_base": "fits.synthetic._model",
    "cache_root": "fits.synthetic._model",
    "base_cache_dir": "fits.synthetic._model",
    "pretrain_synthetic_base": "fits.synthetic._pretrain",
    "ensure_synthetic_base": "fits.synthetic._pretrain",
}
"""Public name -> the module that defines it (loaded on first use)."""

__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
