"""The batched scoring engine: per-example completion NLL without full-vocabulary logits.

For example i with completion tokens y_1..y_T (prompt x), the model gives
log p(y_t | x, y_<t); the engine returns, per example,

    nll_sum_i = -sum_t log p(y_t | ...),   n_tokens_i = T,
    bounded_sum_i = sum_t -ln max(p_t, p_min) / ln(1/p_min)    (each term in [0, 1]),

and whether every completion token is the model's argmax (``greedy``).

How. Examples are sorted by length (longest first, ties by position) and cut into batches
whose composition depends on the lengths only, so two models scored on the same dataset see
the same batches. Labels are built completion-only: prompt and padding positions are -100.
The model's trunk runs once per batch; the hidden states of the labelled positions are
gathered and the LM head is applied to chunks of them (``head_chunk_tokens`` rows at a time),
followed by ``cross_entropy(reduction='none')`` on float32 logits, so the full ``[B, T, V]``
float32 logits tensor never exists. Per-token losses are summed per example in float64.
Position ids follow the attention mask, so left and right padding give the same result (up
to float rounding). A one-time check compares the gathered-head logits with the model's own
``forward(logits_to_keep=1)``; a model whose head does more than a linear layer with a known
soft-cap/scale (``method="hidden"`` cannot reproduce it) falls back to ``method="logits"``:
``logits_to_keep`` with left padding, keeping only the last positions that hold completions.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from measurement._jobs import Journal
from measurement._lm import EncodedExample, encode_examples, pad_token_id, unwrap_causal_lm
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_choice, check_in_interval, check_positive_int

__all__ = ["TokenBatches", "TokenScores", "batch_examples", "make_batches", "score_batches"]

_HEAD_CHECKED: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class TokenBatches:
    """Encoded examples and their fixed batch composition.

    Attributes
    ----------
    examples : tuple of EncodedExample
        In dataset order.
    batches : tuple of tuple of int
        Positions into :attr:`examples`, longest examples first.
    pad_id : int
    padding_side : {"left", "right"}
    """

    examples: tuple[EncodedExample, ...]
    batches: tuple[tuple[int, ...], ...]
    pad_id: int
    padding_side: str = "left"

    @property
    def n_tokens(self) -> int:
        """Completion tokens scored in total."""
        return int(sum(e.n_completion for e in self.examples))


@dataclass(frozen=True)
class TokenScores:
    """Per-example sums over completion tokens (arrays in dataset order).

    Attributes
    ----------
    nll_sum : numpy.ndarray of float64
    n_tokens : numpy.ndarray of int64
    bounded_sum : numpy.ndarray of float64 or None
        Sum of the clipped, scaled per-token loss (when ``p_min`` was given).
    greedy : numpy.ndarray of bool
        Every completion token is the argmax of the model's distribution.
    method : str
        ``"hidden"`` or ``"logits"``.
    """

    nll_sum: np.ndarray
    n_tokens: np.ndarray
    bounded_sum: np.ndarray | None
    greedy: np.ndarray
    method: str


def make_batches(
    examples: Sequence[EncodedExample],
    *,
    pad_id: int,
    batch_size: int = 8,
    max_batch_tokens: int | None = None,
    padding_side: str = "left",
) -> TokenBatches:
    """Sort examples by length (longest first) and cut them into deterministic batches.

    A batch holds at most ``batch_size`` examples and, when ``max_batch_tokens`` is given, at
    most that many padded input tokens (an example longer than the budget gets a batch alone).
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if max_batch_tokens is not None:
        max_batch_tokens = check_positive_int(max_batch_tokens, "max_batch_tokens")
    check_choice(padding_side, "padding_side", ("left", "right"))
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i].ids), i))
    batches: list[tuple[int, ...]] = []
    current: list[int] = []
    for i in order:
        width = len(examples[current[0]].ids) - 1 if current else len(examples[i].ids) - 1
        too_many = len(current) >= batch_size
        too_long = max_batch_tokens is not None and (len(current) + 1) * width > max_batch_tokens
        if current and (too_many or too_long):
            batches.append(tuple(current))
            current = []
        current.append(i)
    if current:
        batches.append(tuple(current))
    return TokenBatches(tuple(examples), tuple(batches), int(pad_id), padding_side)


def batch_examples(
    tokenizer: Any,
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    source: str,
    max_length: int | None = None,
    add_bos: bool = False,
    batch_size: int = 8,
    max_batch_tokens: int | None = None,
    padding_side: str = "left",
) -> TokenBatches:
    """Tokenize (prompt, completion) pairs (:func:`~measurement.encode_examples`) and cut them
    into batches (:func:`make_batches`, padded with the tokenizer's pad token).

    The encoded examples are the batches' ``examples``, in the order of ``prompts``.
    """
    encoded = encode_examples(
        tokenizer, prompts, completions, max_length=max_length, add_bos=add_bos, source=source
    )
    return make_batches(
        encoded,
        pad_id=pad_token_id(tokenizer),
        batch_size=batch_size,
        max_batch_tokens=max_batch_tokens,
        padding_side=padding_side,
    )


def score_batches(
    model: Any,
    batches: TokenBatches,
    *,
    p_min: float | None = None,
    method: str = "auto",
    head_chunk_tokens: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    journal: Journal | None = None,
) -> TokenScores:
    """Score every example of ``batches`` with ``model`` (see the module docstring).

    Parameters
    ----------
    model
        A causal LM (plain or PEFT-wrapped), in eval mode.
    batches : TokenBatches
    p_min : float in (0, 1), optional
        Also return the clipped, scaled loss -ln max(p, p_min) / ln(1/p_min) in [0, 1].
    method : {"auto", "hidden", "logits"}
        ``"hidden"``: LM head on the gathered hidden states; ``"logits"``: the model's own
        ``logits_to_keep`` (left padding only); ``"auto"``: ``"hidden"`` after checking it
        matches the model's own logits, else ``"logits"``.
    head_chunk_tokens : int, optional
        Rows of logits alive at once; default so that a chunk of float32 logits is ~64 MiB.
    on_batch : callable, optional
        ``on_batch(examples_done, tokens_done)`` after each batch (progress bars).
    journal : Journal, optional
        Records each finished batch; batches already in it are not recomputed (resume).
    """
    check_choice(method, "method", ("auto", "hidden", "logits"))
    if p_min is not None:
        check_in_interval(p_min, "p_min", 0.0, 1.0, closed="neither", allow_nan=False)
    lm = unwrap_causal_lm(model)
    device = next(lm.parameters()).device
    vocab = int(lm.get_output_embeddings().weight.shape[0])
    if head_chunk_tokens is None:
        head_chunk_tokens = max(16, (64 << 20) // (4 * vocab))
    n = len(batches.examples)
    acc_device = device if device.type == "cuda" else torch.device("cpu")
    nll = torch.zeros(n, dtype=torch.float64, device=acc_device)
    bounded = torch.zeros_like(nll) if p_min is not None else None
    wrong = torch.zeros(n, dtype=torch.int64, device=acc_device)
    scale = math.log(1.0 / p_min) if p_min is not None else 1.0
    if method == "logits" and batches.padding_side != "left":
        raise InvalidParameterError(
            f"`padding_side` must be 'left' with method='logits'; got {batches.padding_side!r}."
        )
    chosen = method
    done = journal.done if journal is not None else {}
    with torch.inference_mode():
        for b, positions in enumerate(batches.batches):
            if f"batch-{b}" in done:
                _restore_batch(done[f"batch-{b}"], positions, nll, bounded, wrong)
                chosen = done[f"batch-{b}"].get("method", chosen)
                if on_batch is not None:
                    on_batch(
                        len(positions), sum(batches.examples[i].n_completion for i in positions)
                    )
                continue
            inputs, labels = _collate(batches, positions, device)
            if chosen == "auto":
                chosen = _choose_method(model, lm, inputs, batches.padding_side)
            rows, cols = (labels != -100).nonzero(as_tuple=True)
            targets = labels[rows, cols]
            example = torch.as_tensor(positions, device=device)[rows].to(acc_device)
            chunks = _logit_chunks(model, lm, chosen, inputs, labels, rows, cols, head_chunk_tokens)
            for s, logits in chunks:
                tgt = targets[s : s + len(logits)]
                ce = F.cross_entropy(logits, tgt, reduction="none")
                idx = example[s : s + len(logits)]
                nll.index_add_(0, idx, ce.double().to(acc_device))
                if bounded is not None:
                    clipped = ce.double().clamp(max=scale) / scale
                    bounded.index_add_(0, idx, clipped.to(acc_device))
                # greedy: the target's logit is the largest (one cheap max pass, no argmax)
                target_logit = logits.gather(1, tgt[:, None])[:, 0]
                miss = (target_logit < logits.amax(dim=-1)).long()
                wrong.index_add_(0, idx, miss.to(acc_device))
            if journal is not None:
                journal.record(f"batch-{b}", _batch_payload(positions, nll, bounded, wrong, chosen))
            if on_batch is not None:
                on_batch(len(positions), len(targets))
    n_tokens = np.array([e.n_completion for e in batches.examples], dtype=np.int64)
    return TokenScores(
        nll.cpu().numpy(),
        n_tokens,
        None if bounded is None else bounded.cpu().numpy(),
        wrong.cpu().numpy() == 0,
        chosen,
    )


def _batch_payload(
    positions: Sequence[int],
    nll: torch.Tensor,
    bounded: torch.Tensor | None,
    wrong: torch.Tensor,
    method: str,
) -> dict[str, Any]:
    idx = list(positions)
    return {
        "nll": nll[idx].tolist(),
        "bounded": None if bounded is None else bounded[idx].tolist(),
        "wrong": wrong[idx].tolist(),
        "method": method,
    }


def _restore_batch(
    payload: dict[str, Any],
    positions: Sequence[int],
    nll: torch.Tensor,
    bounded: torch.Tensor | None,
    wrong: torch.Tensor,
) -> None:
    idx = list(positions)
    nll[idx] = torch.tensor(payload["nll"], dtype=nll.dtype, device=nll.device)
    if bounded is not None and payload.get("bounded") is not None:
        bounded[idx] = torch.tensor(payload["bounded"], dtype=bounded.dtype, device=bounded.device)
    wrong[idx] = torch.tensor(payload["wrong"], dtype=wrong.dtype, device=wrong.device)


def _collate(
    batches: TokenBatches, positions: Sequence[int], device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Padded inputs (sequence minus its last token) and shifted completion-only labels."""
    seqs = [batches.examples[i] for i in positions]
    width = max(len(e.ids) for e in seqs) - 1
    input_ids = torch.full((len(seqs), width), batches.pad_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, e in enumerate(seqs):
        ids = torch.as_tensor(e.ids)
        length = len(ids) - 1
        start = width - length if batches.padding_side == "left" else 0
        input_ids[r, start : start + length] = ids[:-1]
        mask[r, start : start + length] = 1
        # labels[t] is the token predicted at input position t (already shifted by one)
        labels[r, start + length - e.n_completion : start + length] = ids[-e.n_completion :]
    position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
    inputs = {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "position_ids": position_ids.to(device),
    }
    return inputs, labels.to(device)


def _logit_chunks(
    model: Any,
    lm: Any,
    method: str,
    inputs: dict[str, torch.Tensor],
    labels: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    chunk: int,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, float32 logits)`` for the labelled positions, ``chunk`` rows at a time."""
    if method == "hidden":
        gathered = _trunk(lm)(**inputs).last_hidden_state[rows, cols]
        head = _head_fn(lm)
        for s in range(0, len(rows), chunk):
            yield s, head(gathered[s : s + chunk]).float()
    else:
        width = int(labels.shape[1] - cols.min().item())
        kept = model(**inputs, logits_to_keep=width).logits
        offset = labels.shape[1] - width
        for s in range(0, len(rows), chunk):
            yield s, kept[rows[s : s + chunk], cols[s : s + chunk] - offset].float()


def _trunk(lm: Any) -> Any:
    trunk = lm.base_model if getattr(lm, "base_model", None) is not None else None
    if trunk is None or trunk is lm:
        raise TypeError(f"{type(lm).__name__} has no separate trunk module")
    return trunk


def _head_fn(lm: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The LM head plus the known final-logit transforms of the architecture."""
    head = lm.get_output_embeddings()
    config = getattr(lm.config, "text_config", None) or lm.config
    softcap = getattr(config, "final_logit_softcapping", None)
    multiplier = getattr(config, "logit_scale", None)  # Cohere: logits * logit_scale
    divisor = getattr(config, "logits_scaling", None)  # Granite: logits / logits_scaling

    def apply(hidden: torch.Tensor) -> torch.Tensor:
        logits = head(hidden)
        if multiplier is not None:
            logits = logits * multiplier
        if divisor is not None:
            logits = logits / divisor
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    return apply


def _choose_method(model: Any, lm: Any, inputs: dict[str, torch.Tensor], padding: str) -> str:
    """``"hidden"`` when the gathered-head logits match the model's own, else ``"logits"``."""
    cached = _HEAD_CHECKED.get(lm)
    if cached is not None:
        return cached
    try:
        trunk = _trunk(lm)
    except TypeError:
        chosen = "logits"
    else:
        # the last real position of row 0 (left padding: the last column)
        last = int(inputs["attention_mask"][0].nonzero().max().item())
        one = {k: v[:1, : last + 1] for k, v in inputs.items()}
        hidden = trunk(**one).last_hidden_state[0, -1]
        ours = _head_fn(lm)(hidden).float()
        theirs = model(**one, logits_to_keep=1).logits[0, -1].float()
        tol = 1e-4 if hidden.dtype in (torch.float32, torch.float64) else 2e-2
        scale = float(theirs.abs().max().clamp(min=1.0))
        chosen = "hidden" if torch.allclose(ours, theirs, rtol=tol, atol=tol * scale) else "logits"
    if chosen == "logits" and padding != "left":
        raise InvalidParameterError(
            f"`padding_side` must be 'left' for {type(lm).__name__}, whose head cannot be "
            f"applied to gathered hidden states; got {padding!r}."
        )
    _HEAD_CHECKED[lm] = chosen
    return chosen
