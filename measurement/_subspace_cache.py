"""A cache of trained subspace coordinates z, so a compression attempt can retry quantisation.

The subspace stage of :func:`measurement.compression_certificate` (Adam on z in a random
subspace around the base) is deterministic given the base weights, the training examples and
the settings below, and is most of an attempt's time (about 12 of 15 min for D = 4096, 3000
steps on one CPU core). With a cache folder, its result is saved under a name derived from all
of them and reused by any later attempt that differs only in how it quantises (levels, the
quantisation-aware fine-tune, evaluation); a kill after the subspace stage loses only the rest.

Nothing in the certificate depends on where z came from: the bound is on the quantised model,
whose code is fixed in advance.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pacbound.exceptions import InvalidParameterError

__all__ = ["SUBSPACE_SETTINGS", "load_subspace", "save_subspace", "subspace_key"]

SUBSPACE_SETTINGS = ("dimension", "seed", "nonzeros", "steps", "lr", "batch_size", "train_seed")
"""The :class:`~measurement.CompressionConfig` fields the trained z depends on."""


def _digest(chunks: Any) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def subspace_key(config: Any, prompts: Any, completions: Any, base: list[Any]) -> dict[str, Any]:
    """What a trained z depends on: the subspace settings, and SHA-256 digests of the training
    token ids and of the base weights (float32 bytes, in parameter order)."""
    data = json.dumps([list(prompts), list(completions)]).encode()
    weights = _digest(t.detach().float().contiguous().numpy().tobytes() for t in base)
    return {
        **{name: getattr(config, name) for name in SUBSPACE_SETTINGS},
        "data_sha256": _digest([data]),
        "base_sha256": weights,
    }


def _path(folder: Path, key: dict[str, Any]) -> Path:
    name = _digest([json.dumps(key, sort_keys=True).encode()])[:20]
    return folder / f"subspace-{name}.pt"


def load_subspace(folder: str | os.PathLike[str], key: dict[str, Any]) -> tuple[Any, float] | None:
    """(z, seconds it took to train) saved under ``key`` in ``folder``, or None."""
    import torch

    path = _path(Path(folder), key)
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which, do not guess
        raise InvalidParameterError(
            f"`subspace_cache` file {path} cannot be read ({exc}); remove it and rerun."
        ) from None
    if saved.get("key") != json.loads(json.dumps(key)):
        raise InvalidParameterError(
            f"`subspace_cache` file {path} was saved for other settings; remove it and rerun."
        )
    return saved["z"], float(saved["seconds"])


def save_subspace(
    folder: str | os.PathLike[str], key: dict[str, Any], z: Any, seconds: float
) -> Path:
    """Save z under ``key`` in ``folder`` (created), atomically; returns the file."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = _path(folder, key)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".subspace-", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(
            {"key": json.loads(json.dumps(key)), "z": z.detach().clone(), "seconds": seconds}, tmp
        )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
