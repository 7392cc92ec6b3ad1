"""Pre-training the synthetic base on a range of operation counts.

Fresh problems are drawn at every step (uniform over the op range of :class:`PretrainConfig`,
one seeded stream per step), the loss is the completion-token cross-entropy, and the optimiser
is AdamW with linear warm-up and cosine decay to zero, gradient norm clipped at 1.0. The
result is a standard Hugging Face folder (``config.json``, ``model.safetensors``,
``generation_config.json``, the tokenizer files) plus ``pretrain_meta.json``: the config and
its hash, the loss curve, the base's accuracy per op count, wall time, threads and library
versions. It is written to a temporary folder and renamed when complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fits.synthetic._data import decomposed_test_set, encode_problems
from fits.synthetic._distributions import stable_seed
from fits.synthetic._generator import generate_problems
from fits.synthetic._model import (
    PRETRAIN_META,
    PretrainConfig,
    base_cache_dir,
    build_synthetic_model,
    find_synthetic_base,
)
from pacbound.support import atomic_dir, library_versions, write_json

__all__ = [
    "TRAINING_LIBRARIES",
    "ensure_synthetic_base",
    "make_readable",
    "pretrain_synthetic_base",
]

#: Distributions whose versions a pre-trained base and each sweep run record.
TRAINING_LIBRARIES = ("torch", "transformers", "tokenizers", "peft", "numpy")


def make_readable(folder: Path) -> None:
    """Give a finished output folder and everything in it the permissions of a plain write.

    The folder is a ``mkdtemp`` result (0700) and some writers (safetensors) create 0600
    files; a finished run should be readable like any other file the user writes (umask).
    """
    from pacbound.support import chmod_like_new

    folder = Path(folder)
    chmod_like_new(folder, directory=True)
    for path in folder.rglob("*"):
        chmod_like_new(path, directory=path.is_dir())


def _collate(tokenizer, problems):
    import torch

    prompts, comps = encode_problems(tokenizer, problems)
    seqs = [p + c for p, c in zip(prompts, comps, strict=True)]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (p, s) in enumerate(zip(prompts, seqs, strict=True)):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        labels[i, len(p) : len(s)] = torch.tensor(s[len(p) :])
    return ids, mask, labels


def pretrain_synthetic_base(
    cfg: PretrainConfig,
    out: str | Path,
    *,
    threads: int | None = None,
    eval_per_op: int = 100,
    progress: Callable[[int, int, float], None] | None = None,
    command: str | None = None,
) -> Path:
    """Pre-train a synthetic base model for ``cfg`` and save it to ``out``.

    Parameters
    ----------
    cfg : PretrainConfig
    out : path
        Destination folder (written atomically; replaced if it exists).
    threads : int, optional
        ``torch.set_num_threads`` for the run (default: leave torch's setting).
    eval_per_op : int
        Test problems per op count (1 .. max_ops) for the base's accuracy table in the meta.
    progress : callable, optional
        Called as ``progress(step, steps, loss)`` after every step.
    command : str, optional
        The command line that produced it, recorded in the meta.

    Returns
    -------
    Path
        ``out``.
    """
    import torch
    from transformers import get_cosine_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    from fits.synthetic._evaluation import decomposed_metrics

    hf_logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(int(threads))
    fmt = cfg.task_format
    model, tok = build_synthetic_model(cfg)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, cfg.warmup_steps, cfg.steps)
    lo, hi = cfg.ops
    losses: list[tuple[int, float]] = []
    window: list[float] = []
    t0 = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        rng = np.random.default_rng([cfg.seed, step, stable_seed("pretrain-ops")])
        ops = rng.integers(lo, hi + 1, size=cfg.batch_size)
        problems = generate_problems(
            ops, seed=stable_seed("pretrain", cfg.seed, step) % 2**31, fmt=fmt
        )
        ids, mask, labels = _collate(tok, problems)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        window.append(float(loss.detach()))
        if step % 25 == 0 or step == cfg.steps:
            losses.append((step, float(np.mean(window))))
            window = []
        if progress is not None:
            progress(step, cfg.steps, float(loss.detach()))
    train_seconds = time.perf_counter() - t0
    model.eval()
    test = decomposed_test_set(range(1, fmt.max_ops + 1), eval_per_op, fmt=fmt)
    metrics = decomposed_metrics(model, tok, test, fmt=fmt, inrange_ops=cfg.ops)
    meta = {
        "config": cfg.to_dict(),
        "config_hash": cfg.config_hash(),
        "name": cfg.name,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "final_loss": losses[-1][1],
        "loss_curve": [{"step": s, "loss": v} for s, v in losses],
        "eval_per_op": eval_per_op,
        "eval": metrics,
        "train_seconds": train_seconds,
        "threads": torch.get_num_threads(),
        "command": command,
        "versions": library_versions(TRAINING_LIBRARIES),
    }
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_json(tmp / PRETRAIN_META, meta)
        make_readable(tmp)
    return Path(out)


def ensure_synthetic_base(
    cfg: PretrainConfig | None = None,
    *,
    threads: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> Path:
    """The folder of the base for ``cfg``: shipped, cached, or pre-trained now into the cache."""
    cfg = cfg or PretrainConfig()
    found = find_synthetic_base(cfg)
    if found is not None:
        return found
    return pretrain_synthetic_base(
        cfg,
        base_cache_dir(cfg),
        threads=threads,
        progress=progress,
        command="fits.synthetic.ensure_synthetic_base",
    )
