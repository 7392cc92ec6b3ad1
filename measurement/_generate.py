"""Batched generation for answer checking: greedy (correctness) or seeded sampling (pass rate).

Prompts are tokenized like the scored prompts (no special tokens unless ``add_bos``; an empty
prompt becomes the BOS/EOS token), left-padded, sorted by length (longest first) and cut into
fixed batches, so a run is reproducible: the batch composition depends on the prompts only,
and sampling is seeded per batch inside :func:`torch.random.fork_rng` (the global RNG state is
left untouched).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from measurement._jobs import Journal
from measurement._lm import pad_token_id, unwrap_causal_lm
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_in_interval, check_positive_int

__all__ = ["generate_completions", "seed_for"]


def seed_for(*key: int) -> int:
    """A 63-bit seed derived from a tuple of non-negative integers (numpy SeedSequence)."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def generate_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    num_samples: int = 1,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    add_bos: bool = False,
    max_length: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    journal: Journal | None = None,
) -> list[list[str]]:
    """Generate ``num_samples`` completions per prompt.

    Parameters
    ----------
    model, tokenizer
        A causal LM (plain or PEFT-wrapped) and its tokenizer.
    prompts : sequence of str
    max_new_tokens : int
    batch_size : int
        Prompts per ``generate`` call (each expands to ``num_samples`` sequences).
    num_samples : int
        Completions per prompt; more than 1 needs ``do_sample``.
    do_sample : bool
        Greedy decoding when False.
    temperature, top_p : float
        Sampling parameters.
    seed : int
        Sampling seed; batch ``b`` samples with ``seed_for(seed, b)``.
    add_bos : bool
        Put the BOS token before every prompt.
    max_length : int, optional
        Prompts are left-truncated to ``max_length - max_new_tokens`` tokens.
    on_batch : callable, optional
        Called with the number of prompts finished after each batch (progress bars).
    journal : Journal, optional
        Records each finished batch; batches already in it are not generated again (resume).

    Returns
    -------
    list of list of str
        ``out[i]`` holds the ``num_samples`` decoded completions of ``prompts[i]``.
    """
    max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
    batch_size = check_positive_int(batch_size, "batch_size")
    num_samples = check_positive_int(num_samples, "num_samples")
    check_in_interval(temperature, "temperature", 0.0, closed="neither", allow_nan=False)
    check_in_interval(top_p, "top_p", 0.0, 1.0, closed="right", allow_nan=False)
    if num_samples > 1 and not do_sample:
        raise InvalidParameterError(
            f"`num_samples` must be 1 for greedy decoding (do_sample=False); got {num_samples}."
        )
    lm = unwrap_causal_lm(model)
    device = next(lm.parameters()).device
    pad_id = pad_token_id(tokenizer)
    prefix = (
        tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    )
    bos = [tokenizer.bos_token_id] if add_bos and tokenizer.bos_token_id is not None else []
    encoded = []
    for text in prompts:
        ids = bos + tokenizer.encode(text, add_special_tokens=False)
        if not ids:
            ids = [prefix if prefix is not None else pad_id]
        if max_length is not None and len(ids) > max(1, max_length - max_new_tokens):
            ids = ids[-max(1, max_length - max_new_tokens) :]
        encoded.append(ids)
    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i]), i))
    out: list[list[str]] = [[] for _ in prompts]
    done = journal.done if journal is not None else {}
    for b, start in enumerate(range(0, len(order), batch_size)):
        rows = order[start : start + batch_size]
        if f"generate-{b}" in done:
            for i, texts in zip(rows, done[f"generate-{b}"], strict=True):
                out[i] = list(texts)
            if on_batch is not None:
                on_batch(len(rows))
            continue
        width = max(len(encoded[i]) for i in rows)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            ids = encoded[i]
            input_ids[r, width - len(ids) :] = torch.as_tensor(ids)
            mask[r, width - len(ids) :] = 1
        kwargs: dict[str, Any] = dict(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            num_return_sequences=num_samples,
            pad_token_id=pad_id,
        )
        if do_sample:
            kwargs.update(temperature=float(temperature), top_p=float(top_p), top_k=0)
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed_for(seed, b))
            if device.type == "cuda":
                torch.cuda.manual_seed(seed_for(seed, b))
            generated = model.generate(**kwargs)
        new = generated[:, width:].cpu()
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        for r, i in enumerate(rows):
            out[i] = texts[r * num_samples : (r + 1) * num_samples]
        if journal is not None:
            journal.record(f"generate-{b}", [out[i] for i in rows])
        if on_batch is not None:
            on_batch(len(rows))
    return out
