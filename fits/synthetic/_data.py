"""Synthetic datasets: training pools, the decomposed test set, and files on disk.

Records have the columns ``uid, prompt, completion, answer, ops`` (``ops`` is the difficulty
column). Files are JSON Lines (``.jsonl``) or Parquet (``.parquet``), chosen by extension, and
written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fits.synthetic._distributions import OpsDistribution, stable_seed
from fits.synthetic._generator import SyntheticProblem, TaskFormat, generate_problems
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_positive_int, write_table

__all__ = [
    "COLUMNS",
    "decomposed_test_set",
    "encode_problems",
    "parse_ops_range",
    "sample_training_set",
    "write_problems",
]

COLUMNS = ("uid", "prompt", "completion", "answer", "ops")


def parse_ops_range(text: str, name: str = "ops") -> tuple[int, int]:
    """Parse ``"2-8"`` (or ``"3"``) into ``(lo, hi)``."""
    raw = str(text).strip()
    lo_txt, sep, hi_txt = raw.partition("-")
    try:
        lo = int(lo_txt)
        hi = int(hi_txt) if sep else lo
    except ValueError:
        raise InvalidParameterError(
            f"`{name}` must be an op-count range like '2-8' or a single count like '4'; "
            f"got {text!r}."
        ) from None
    if not 1 <= lo <= hi:
        raise InvalidParameterError(f"`{name}` must satisfy 1 <= lo <= hi; got {text!r}.")
    return lo, hi


def sample_training_set(
    dist: OpsDistribution, n: int, seed: int, fmt: TaskFormat | None = None
) -> list[SyntheticProblem]:
    """``n`` problems drawn i.i.d. from ``dist``; smaller ``n`` give prefixes of larger ones.

    The pool depends on ``(seed, dist.label)`` only, so the budgets of one (difficulty, seed)
    cell are nested subsets, as in the paper's design.
    """
    fmt = fmt or TaskFormat(max_ops=dist.max_ops)
    if fmt.max_ops != dist.max_ops:
        raise InvalidParameterError(
            f"`max_ops` of the task ({fmt.max_ops}) must equal that of the training "
            f"distribution {dist.label} ({dist.max_ops})."
        )
    ops = dist.sample_ops(n, seed)
    return generate_problems(ops, seed=stable_seed("train", seed, dist.label) % 2**31, fmt=fmt)


def decomposed_test_set(
    ops: Sequence[int], per_op: int, seed: int = 1_000_003, fmt: TaskFormat | None = None
) -> list[SyntheticProblem]:
    """``per_op`` problems for each op count in ``ops`` (the paper's decomposed evaluation).

    The stream is separate from every training pool (its own seed label), so test problems do
    not depend on the training sets.
    """
    fmt = fmt or TaskFormat()
    per_op = check_positive_int(per_op, "per_op")
    counts = np.repeat(np.asarray(list(ops), dtype=np.int64), per_op)
    return generate_problems(counts, seed=stable_seed("test", seed) % 2**31, fmt=fmt)


def write_problems(problems: Sequence[SyntheticProblem], path: str | Path) -> Path:
    """Write problems to ``path`` atomically, one row per problem with the :data:`COLUMNS`.

    The format follows the suffix (``.jsonl``, ``.json``, ``.csv``, ``.tsv``, ``.parquet``:
    :func:`pacbound.support.write_table`).
    """
    import pandas as pd

    frame = pd.DataFrame([p.to_dict() for p in problems], columns=list(COLUMNS))
    return write_table(frame, path)


def encode_problems(
    tokenizer, problems: Sequence[SyntheticProblem]
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of each prompt (with BOS) and completion (with EOS appended)."""
    if not problems:
        return [], []
    prompts = tokenizer([p.prompt for p in problems])["input_ids"]
    comps = tokenizer([p.completion for p in problems], add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return [list(x) for x in prompts], [[*c, eos] for c in comps]
