"""The synthetic base model: its config, the hash that keys its cache folder, where it lives.

The base is a small ``LlamaForCausalLM`` built from a transformers config (defaults: hidden
128, 2 layers, 4 heads, FFN 512, tied embeddings, RoPE; about 530k parameters) and
pre-trained on a range of operation counts (the paper's "Ops[2-6]" / "Ops[2-8]" style bases).
A pre-trained base is looked up, in order, in

1. the package's shipped checkpoints (every ``fits/data/synthetic-base-*/``: Ops[1-4] with 8
   op slots, and the calibrated Ops[1-2] with 6 slots that the demo uses) when the recorded
   config hash matches, so sweeps of those configs and the demo need no pre-training;
2. the user's cache folder: ``$SFT_TRADEOFF_CACHE``, else ``$XDG_CACHE_HOME/sft-tradeoff``,
   else ``~/.cache/sft-tradeoff``, under ``bases/synthetic-<hash>/``.

The hash covers everything that changes the weights (task format, op range, model shape,
optimiser, steps, seed) and a format version.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fits.synthetic._generator import TaskFormat
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_positive_int

__all__ = [
    "SHIPPED_BASE",
    "PretrainConfig",
    "SyntheticModelConfig",
    "base_cache_dir",
    "build_synthetic_model",
    "cache_root",
    "find_synthetic_base",
    "shipped_base_dir",
    "shipped_base_dirs",
]

FORMAT_VERSION = 1
SHIPPED_BASE = "synthetic-base-ops1-4"
PRETRAIN_META = "pretrain_meta.json"


@dataclass(frozen=True)
class SyntheticModelConfig:
    """Shape of the small Llama used for the synthetic task.

    Attributes
    ----------
    hidden_size, num_layers, num_heads, intermediate_size : int
        Transformer shape (defaults: 128, 2, 4, 512; about 530k parameters).
    max_position_embeddings : int
        Context length (the longest synthetic sequence is about 125 tokens at ``max_ops`` 8).
    """

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 256

    def llama_config(self, vocab_size: int, *, bos: int, eos: int, pad: int):
        """The ``transformers.LlamaConfig`` (tied embeddings, no biases, RoPE)."""
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_heads,
            max_position_embeddings=self.max_position_embeddings,
            tie_word_embeddings=True,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
        )


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines a pre-trained synthetic base (and so its cache key).

    Attributes
    ----------
    ops : tuple of int
        Op-count range ``(lo, hi)`` of the pre-training problems (uniform over it).
    max_ops, prime : int
        Task format: operation slots per prompt and the modulus.
    steps, batch_size : int
        Optimiser steps and problems per step; fresh problems are drawn at every step.
    lr, warmup_steps, weight_decay : float, int, float
        AdamW with linear warm-up then cosine decay to 0; gradient clipping at 1.0.
    seed : int
        Seed of the initial weights and of the problem stream.
    model : SyntheticModelConfig
        Model shape.
    """

    ops: tuple[int, int] = (1, 4)
    max_ops: int = 8
    prime: int = 7
    steps: int = 1200
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    model: SyntheticModelConfig = field(default_factory=SyntheticModelConfig)

    def __post_init__(self) -> None:
        lo, hi = self.ops
        fmt = self.task_format
        if not 1 <= lo <= hi <= fmt.max_ops:
            raise InvalidParameterError(
                f"`ops` must satisfy 1 <= lo <= hi <= max_ops = {fmt.max_ops}; got {lo}-{hi}."
            )
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.warmup_steps, "warmup_steps", minimum=0)
        if not self.lr > 0:
            raise InvalidParameterError(f"`lr` must be positive; got {self.lr!r}.")

    @property
    def task_format(self) -> TaskFormat:
        return TaskFormat(max_ops=self.max_ops, prime=self.prime)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["ops"] = list(self.ops)
        d["format_version"] = FORMAT_VERSION
        return d

    @classmethod
    def from_dict(cls, data: dict) -> PretrainConfig:
        data = {k: v for k, v in data.items() if k != "format_version"}
        model = SyntheticModelConfig(**data.pop("model", {}))
        return cls(ops=tuple(data.pop("ops", (1, 4))), model=model, **data)

    def config_hash(self) -> str:
        """SHA-256 (first 12 hex digits) of the canonical JSON of :meth:`to_dict`."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        return f"synthetic-ops{self.ops[0]}-{self.ops[1]}-{self.config_hash()}"


def build_synthetic_model(cfg: PretrainConfig):
    """A freshly initialised model (seeded by ``cfg.seed``) and its tokenizer."""
    import torch
    from transformers import LlamaForCausalLM

    from fits.synthetic._vocab import build_synthetic_tokenizer

    tok = build_synthetic_tokenizer(cfg.prime)
    config = cfg.model.llama_config(
        len(tok), bos=tok.bos_token_id, eos=tok.eos_token_id, pad=tok.pad_token_id
    )
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(config)
    return model, tok


def cache_root() -> Path:
    """The user's cache folder for sft-tradeoff (created on demand by writers)."""
    env = os.environ.get("SFT_TRADEOFF_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sft-tradeoff"


def base_cache_dir(cfg: PretrainConfig) -> Path:
    """Where the base for ``cfg`` is cached."""
    return cache_root() / "bases" / cfg.name


def shipped_base_dir() -> Path:
    """The checkpoint shipped in the package (``fits/data/synthetic-base-ops1-4``)."""
    return Path(__file__).resolve().parent.parent / "data" / SHIPPED_BASE


def shipped_base_dirs() -> list[Path]:
    """Every checkpoint shipped in the package (``fits/data/synthetic-base-*``), sorted."""
    return sorted(shipped_base_dir().parent.glob("synthetic-base-*"))


def _matches(folder: Path, cfg: PretrainConfig) -> bool:
    meta = folder / PRETRAIN_META
    if not (meta.is_file() and (folder / "config.json").is_file()):
        return False
    try:
        recorded = json.loads(meta.read_text())["config_hash"]
    except (ValueError, KeyError):
        return False
    return recorded == cfg.config_hash()


def find_synthetic_base(cfg: PretrainConfig | None = None) -> Path | None:
    """The folder of an already pre-trained base for ``cfg``, or None.

    Looks in the shipped package data first, then in the cache (see module docstring).
    """
    cfg = cfg or PretrainConfig()
    for folder in (*shipped_base_dirs(), base_cache_dir(cfg)):
        if _matches(folder, cfg):
            return folder
    return None
