"""The controlled synthetic task: iGSM-like modular-arithmetic problems with a known difficulty.

A problem is a small dependency graph of named quantities, each defined from the previous one
by arithmetic modulo a small prime, plus a question about one quantity; the completion is the
step-by-step computation. Difficulty is the number of operations on the path to the asked
quantity. Every prompt has the same length (a distractor chain pads it), so a small RoPE model
sees the same relative distances at every difficulty (research/synthetic.md).

Modules (all private, one job each):

- ``_generator``: problems, solutions and the checker that re-evaluates a chain.
- ``_vocab``: the word-level tokenizer (a real ``tokenizers`` model wrapped for transformers).
- ``_distributions``: difficulty as a training distribution (bins and Gaussian mixtures over
  operation counts) and the exact TV distance to the test distribution.
- ``_data``: datasets on disk (JSONL or Parquet) and tokenisation for training.
- ``_model``: the base model's config, its hash and where it is cached.
- ``_pretrain``: pre-training the base on a range of operation counts.

The public names are exported from :mod:`fits` (see ``fits/_exports_sweep.py``).
"""
