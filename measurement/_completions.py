"""Evaluation of a causal LM on prompt/completion examples: loss and exact-answer accuracy.

For each example:

- **loss**: the mean negative log-likelihood of the completion tokens (EOS included) given the
  prompt, teacher-forced, in eval mode; a slice's loss is the mean over its examples (every
  problem weighs the same, whatever its length);
- **accuracy**: greedy decoding (batched, with the KV cache, left padding) until EOS or
  ``max_new_tokens``; the final answer is parsed from the generated text by ``answer_fn`` and
  compared with the reference answer.

Exact shortcut: when the teacher-forced argmax equals the reference at every completion
position (EOS included), greedy decoding reproduces the reference completion token by token,
so its answer is the reference answer; such examples are marked correct without decoding and
only the others are decoded. (Up to floating-point differences between a full forward pass and
the cached incremental one, which can only flip exact argmax ties.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from measurement._lm import pad_token_id

__all__ = [
    "EvalExample",
    "ExampleScores",
    "score_examples",
    "summarize_scores",
    "teacher_forced",
]


@dataclass(frozen=True)
class EvalExample:
    """One example to score.

    Attributes
    ----------
    prompt_ids, completion_ids : tuple of int
        Token ids; ``completion_ids`` ends with EOS.
    answer : str or None
        Reference final answer (None: accuracy is not computed for this example).
    """

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    answer: str | None


@dataclass(frozen=True)
class ExampleScores:
    """Per-example results of :func:`score_examples` (arrays aligned with the input).

    Attributes
    ----------
    nll_mean : ndarray of float64
        Mean completion-token NLL (nats).
    n_tokens : ndarray of int64
        Completion tokens scored.
    correct : ndarray of float64
        1.0 / 0.0 for exact final answer, NaN when the example has no reference answer.
    teacher_forced_exact : ndarray of bool
        Whether the teacher-forced argmax matched the whole reference completion.
    decoded : int
        How many examples needed greedy decoding (the rest used the exact shortcut).
    """

    nll_mean: np.ndarray
    n_tokens: np.ndarray
    correct: np.ndarray
    teacher_forced_exact: np.ndarray
    decoded: int


def teacher_forced(
    model: Any,
    examples: Sequence[EvalExample],
    order: Sequence[int],
    batch_size: int,
    pad_id: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Teacher-forced completion scores of ``examples``, batched in the given ``order``.

    Returns ``(nll, ntok, exact)``: per example, the mean negative log-likelihood of the
    completion tokens given the prompt, :math:`-\frac{1}{|c|}\sum_t \log p(c_t \mid x, c_{<t})`,
    the completion's token count, and whether the argmax equals the reference at every
    completion position (then greedy decoding reproduces the reference exactly).
    """
    import torch

    n = len(examples)
    nll = np.zeros(n, dtype=np.float64)
    ntok = np.zeros(n, dtype=np.int64)
    exact = np.zeros(n, dtype=bool)
    device = next(model.parameters()).device
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        seqs = [list(examples[i].prompt_ids) + list(examples[i].completion_ids) for i in idx]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = torch.tensor(s)
            mask[row, : len(s)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
        for row, i in enumerate(idx):
            p_len = len(examples[i].prompt_ids)
            c = torch.tensor(examples[i].completion_ids, device=logp.device)
            pos = torch.arange(p_len - 1, p_len - 1 + len(c), device=logp.device)
            lp = logp[row, pos]
            nll[i] = float(-lp.gather(1, c[:, None]).sum().double()) / len(c)
            ntok[i] = len(c)
            exact[i] = bool((lp.argmax(dim=-1) == c).all())
    return nll, ntok, exact


def _greedy(model, examples, todo, batch_size, max_new_tokens, pad_id, eos_id):
    """Generated completion ids (up to, not including, EOS) for the examples in ``todo``."""
    import torch

    device = next(model.parameters()).device
    out: dict[int, list[int]] = {}
    for start in range(0, len(todo), batch_size):
        idx = todo[start : start + batch_size]
        width = max(len(examples[i].prompt_ids) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            p = examples[i].prompt_ids
            ids[row, width - len(p) :] = torch.tensor(p)
            mask[row, width - len(p) :] = 1
        with torch.inference_mode():
            gen = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                eos_token_id=eos_id,
                pad_token_id=pad_id,
                use_cache=True,
            )
        new = gen[:, width:].tolist()
        for row, i in enumerate(idx):
            toks = new[row]
            out[i] = toks[: toks.index(eos_id)] if eos_id in toks else toks
    return out


def score_examples(
    model,
    tokenizer,
    examples: Sequence[EvalExample],
    *,
    answer_fn: Callable[[str], object] | None,
    max_new_tokens: int,
    batch_size: int = 256,
    decode_batch_size: int | None = None,
    accuracy: bool = True,
) -> ExampleScores:
    """Score ``examples`` with ``model`` in eval mode (see the module docstring).

    Parameters
    ----------
    model : transformers causal LM
    tokenizer : the model's tokenizer (pad and EOS ids; decoding of generated text)
    examples : sequence of EvalExample
    answer_fn : callable
        Text of a completion -> its final answer (compared as ``str``); None disables accuracy.
    max_new_tokens : int
        Decoding limit.
    batch_size, decode_batch_size : int
        Examples per forward pass (teacher-forced) and per ``generate`` call.
    accuracy : bool
        False skips decoding (accuracy is NaN).
    """
    was_training = model.training
    model.eval()
    pad_id = pad_token_id(tokenizer)
    eos_id = tokenizer.eos_token_id
    n = len(examples)
    lengths = np.array([len(e.prompt_ids) + len(e.completion_ids) for e in examples])
    order = np.argsort(-lengths, kind="stable").tolist()
    try:
        nll, ntok, exact = teacher_forced(model, examples, order, batch_size, pad_id)
        correct = np.full(n, np.nan)
        decoded = 0
        if accuracy and answer_fn is not None:
            has_answer = [e.answer is not None for e in examples]
            todo = []
            for i, e in enumerate(examples):
                if not has_answer[i]:
                    continue
                if exact[i]:
                    gold_text = tokenizer.decode(list(e.completion_ids), skip_special_tokens=True)
                    if str(answer_fn(gold_text)) == str(e.answer):
                        correct[i] = 1.0
                        continue
                todo.append(i)
            todo.sort(key=lambda i: -len(examples[i].prompt_ids))
            gens = _greedy(
                model,
                examples,
                todo,
                decode_batch_size or batch_size,
                max_new_tokens,
                pad_id,
                eos_id,
            )
            for i, toks in gens.items():
                text = tokenizer.decode(toks, skip_special_tokens=True)
                correct[i] = float(str(answer_fn(text)) == str(examples[i].answer))
            decoded = len(todo)
    finally:
        model.train(was_training)
    return ExampleScores(nll, ntok, correct, exact, decoded)


def summarize_scores(scores: ExampleScores, groups: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-group metrics ``<group>_loss``, ``<group>_accuracy`` and ``<group>_n``.

    ``groups`` maps a slice name to a boolean mask over the scored examples. Loss is the mean
    over the slice's examples of their mean token NLL; accuracy the mean of ``correct``.
    """
    out: dict[str, float] = {}
    for name, mask in groups.items():
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            continue
        out[f"{name}_loss"] = float(scores.nll_mean[mask].mean())
        acc = scores.correct[mask]
        if not np.isnan(acc).all():
            out[f"{name}_accuracy"] = float(np.nanmean(acc))
        out[f"{name}_n"] = int(mask.sum())
    return out
