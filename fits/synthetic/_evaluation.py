"""The paper's decomposed evaluation on the synthetic task: metrics per operation count.

Slices: ``ops<k>`` for every op count present, ``inrange`` (op counts inside the base model's
pre-training range), ``extrap`` (outside it) and ``test`` (everything; the test distribution
is uniform over op counts). Each slice gets ``<slice>_loss`` (mean completion-token NLL,
averaged over problems) and ``<slice>_accuracy`` (exact final answer under greedy decoding).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fits.synthetic._data import encode_problems
from fits.synthetic._generator import SyntheticProblem, TaskFormat, answer_from_completion

__all__ = ["decomposed_metrics", "synthetic_eval_examples"]


def synthetic_eval_examples(tokenizer, problems: Sequence[SyntheticProblem]):
    """:class:`~measurement._completions.EvalExample` list for ``problems``."""
    from measurement import EvalExample

    prompts, comps = encode_problems(tokenizer, problems)
    return [
        EvalExample(tuple(p), tuple(c), str(pr.answer))
        for p, c, pr in zip(prompts, comps, problems, strict=True)
    ]


def decomposed_metrics(
    model,
    tokenizer,
    problems: Sequence[SyntheticProblem],
    *,
    fmt: TaskFormat,
    inrange_ops: tuple[int, int] | None,
    batch_size: int = 256,
    per_op: bool = True,
    total_name: str = "test",
) -> dict[str, float]:
    """Loss and accuracy per slice (see module docstring), keys without the ``eval_`` prefix.

    Parameters
    ----------
    inrange_ops : (lo, hi) or None
        The base model's pre-training op range; None skips the in-range/extrapolation split.
    per_op : bool
        Include the ``ops<k>`` slices.
    total_name : str
        Name of the whole-set slice (``"test"``, or ``"train"`` for the training subset).
    """
    from measurement import score_examples, summarize_scores

    examples = synthetic_eval_examples(tokenizer, problems)
    scores = score_examples(
        model,
        tokenizer,
        examples,
        answer_fn=answer_from_completion,
        max_new_tokens=fmt.completion_tokens(fmt.max_ops) + 2,
        batch_size=batch_size,
    )
    ops = np.array([p.ops for p in problems])
    groups: dict[str, np.ndarray] = {total_name: np.ones(len(problems), dtype=bool)}
    if inrange_ops is not None:
        lo, hi = inrange_ops
        inside = (ops >= lo) & (ops <= hi)
        groups["inrange"] = inside
        groups["extrap"] = ~inside
    if per_op:
        for k in sorted(set(ops.tolist())):
            groups[f"ops{k}"] = ops == k
    out = summarize_scores(scores, groups)
    out[f"{total_name}_decoded"] = scores.decoded
    return out
