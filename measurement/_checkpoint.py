"""Plan a checkpoint from its headers alone: names, shapes, dtypes and byte offsets.

Safetensors headers are parsed and checked against the file size *before any tensor is read*
(:mod:`measurement._safetensors`), so that a truncated or corrupt file fails at planning time
with a message that names the file and the tensor.

Accepted inputs: a Hugging Face model folder (``model.safetensors``, or shards listed in
``model.safetensors.index.json``, or ``pytorch_model.bin`` / ``pytorch_model.bin.index.json``),
a single ``.safetensors`` file, or a single ``.bin``/``.pt`` file. ``.bin`` files are opened
with ``torch.load(weights_only=True, mmap=True)``, which maps them without reading the data.
Quantised checkpoints are refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measurement._safetensors import (
    DTYPE_BITS,
    DTYPE_CODE_OF_TORCH,
    FLOAT_DTYPES,
    TORCH_DTYPE_NAMES,
    check_weight_file,
    read_safetensors_header,
)
from measurement.exceptions import CheckpointError, QuantizedCheckpointError

__all__ = [
    "Checkpoint",
    "TensorInfo",
    "checkpoint_fingerprint",
    "confined_path",
    "open_checkpoint",
]

#: Bytes hashed at the start and at the end of every file by :func:`checkpoint_fingerprint`.
_EDGE = 1 << 20

#: Tensor-name endings that only quantised checkpoints carry (GPTQ, AWQ, bitsandbytes, FP8,
#: compressed-tensors, HQQ).
QUANTIZED_SUFFIXES = (
    ".qweight", ".qzeros", ".g_idx", ".scales", ".weight_scale_inv", ".weight_scale",
    ".input_scale", ".weight_zero_point", ".weight_packed", ".weight_shape", ".absmax",
    ".quant_map", ".nested_absmax", ".nested_quant_map", ".SCB", ".weight_format",
    ".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4", ".W_q",
)  # fmt: skip

_SAFETENSORS_INDEX = "model.safetensors.index.json"
_BIN_INDEX = "pytorch_model.bin.index.json"


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives and what it holds, read from a header.

    Attributes
    ----------
    name : str
        The tensor's name in its checkpoint.
    file : pathlib.Path
        The file that holds it.
    dtype : str
        safetensors dtype code (``"BF16"``, ``"F32"``, ...).
    shape : tuple of int
        Its shape.
    data_start : int or None
        Absolute byte offset of its first element in ``file`` (``None`` for ``.bin`` files).
    nbytes : int
        Size of its data in bytes.
    """

    name: str
    file: Path
    dtype: str
    shape: tuple[int, ...]
    data_start: int | None
    nbytes: int

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        """True for full-precision floating weights (F16, BF16, F32, F64)."""
        return self.dtype in FLOAT_DTYPES

    @property
    def dtype_name(self) -> str:
        """The torch name of the dtype (``"bfloat16"``), or the code when torch has none."""
        return TORCH_DTYPE_NAMES.get(self.dtype, self.dtype)

    @property
    def itemsize(self) -> int:
        """Bytes per element (for the byte-aligned dtypes)."""
        return DTYPE_BITS[self.dtype] // 8


@dataclass(frozen=True)
class Checkpoint:
    """A planned checkpoint: every tensor's location, before any data is read.

    Attributes
    ----------
    path : pathlib.Path
        The file or folder the user gave.
    format : {"safetensors", "torch"}
        Storage format.
    files : tuple of pathlib.Path
        Weight files, in order.
    tensors : mapping of str to TensorInfo
        Every tensor, in file order (file, then offset).
    config : dict or None
        ``config.json`` beside the weights, when there is one.
    aliases : mapping of str to str
        Names dropped because they share storage with a kept name (tied weights in ``.bin``
        files), mapped to the kept name.
    """

    path: Path
    format: str
    files: tuple[Path, ...]
    tensors: Mapping[str, TensorInfo]
    config: dict[str, Any] | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    torch_state: Mapping[Path, Mapping[str, Any]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def total_bytes(self) -> int:
        """Bytes of tensor data over all files."""
        return sum(t.nbytes for t in self.tensors.values())

    @property
    def tie_word_embeddings(self) -> bool | None:
        """``tie_word_embeddings`` from config.json (top level or text config), if stated."""
        if not self.config:
            return None
        for cfg in (self.config, self.config.get("text_config") or {}):
            if isinstance(cfg, dict) and "tie_word_embeddings" in cfg:
                return bool(cfg["tie_word_embeddings"])
        return None

    def __str__(self) -> str:
        return (
            f"Checkpoint({self.path}: {len(self.tensors)} tensors in {len(self.files)} "
            f"{self.format} file(s), {self.total_bytes / 1e9:.3f} GB)"
        )


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{what} `{path}` is not valid JSON ({exc}).") from None


def _discover(path: Path) -> tuple[str, list[Path], Path | None, dict[str, Any] | None]:
    """Return (format, weight files, index file, its weight map) for a user-given path (the
    last two None when there is no index)."""
    if not path.exists():
        raise CheckpointError(f"Checkpoint `{path}` does not exist.")
    if path.is_file():
        name = path.name
        if name.endswith(".index.json"):
            fmt = "safetensors" if ".safetensors." in name else "torch"
            return fmt, *_index_files(path)
        if name.endswith(".safetensors"):
            return "safetensors", [path], None, None
        if name.endswith((".bin", ".pt", ".pth")):
            return "torch", [path], None, None
        raise CheckpointError(
            f"Checkpoint `{path}` must be a .safetensors, .bin/.pt file, an *.index.json or a "
            "model folder; got a file with another extension."
        )
    model_files = (_SAFETENSORS_INDEX, _BIN_INDEX, "model.safetensors", "pytorch_model.bin")
    if (path / "adapter_config.json").exists() and not any(
        (path / f).exists() for f in model_files
    ):
        raise CheckpointError(
            f"`{path}` is a PEFT adapter folder (it has adapter_config.json), not a model; "
            "pass it as the adapter (`adapter=` or `--adapter`) on top of its base model."
        )
    for index_name, fmt in ((_SAFETENSORS_INDEX, "safetensors"), (_BIN_INDEX, "torch")):
        if (path / index_name).exists():
            return fmt, *_index_files(path / index_name)
    if (path / "model.safetensors").exists():
        return "safetensors", [path / "model.safetensors"], None, None
    if (path / "pytorch_model.bin").exists():
        return "torch", [path / "pytorch_model.bin"], None, None
    found = sorted(path.glob("*.safetensors"))
    if found:
        return "safetensors", found, None, None
    raise CheckpointError(
        f"No weights found in folder `{path}`: looked for model.safetensors, "
        f"{_SAFETENSORS_INDEX}, pytorch_model.bin, {_BIN_INDEX} and *.safetensors."
    )


def _index_files(index: Path) -> tuple[list[Path], Path, dict[str, Any]]:
    """The shards an index file lists, the index itself and its (checked) weight map."""
    data = _read_json(index, "Index file")
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(
            f"Index file `{index}` must hold a non-empty `weight_map` object; got "
            f"{type(weight_map).__name__}."
        )
    files = []
    for shard in dict.fromkeys(weight_map.values()):
        shard_path = confined_path(index.parent, shard, source=index, what="shard")
        if not shard_path.is_file():
            names = [k for k, v in weight_map.items() if v == shard][:3]
            raise CheckpointError(
                f"Index file `{index}` lists shard `{shard}` (for tensors such as "
                f"{', '.join(names)}) but `{shard_path}` does not exist."
            )
        files.append(shard_path)
    return files, index, weight_map


def confined_path(folder: Path, entry: Any, *, source: Path, what: str = "path") -> Path:
    """The path that an entry read from ``source`` names inside ``folder``, or an error.

    The entry must be a relative path that stays inside ``folder`` once normalised
    (``os.path.normpath``: no absolute path, no ``..`` leaving the folder). The check is on the
    name, not on the target of a symbolic link, so that folders whose files are links to
    content-addressed blobs elsewhere (the Hugging Face cache) remain readable.

    Raises
    ------
    CheckpointError
        The entry is not a non-empty string, is absolute, or leaves ``folder``.
    """
    rule = f"each {what} must be a relative path inside the checkpoint folder `{folder}`"
    if not isinstance(entry, str) or not entry or "\x00" in entry:
        raise CheckpointError(f"`{source}` names {what} {entry!r}; {rule}.")
    root = os.path.normpath(os.path.abspath(folder))
    target = os.path.normpath(os.path.join(root, entry))
    if os.path.isabs(entry) or os.path.commonpath([root, target]) != root or target == root:
        raise CheckpointError(f"`{source}` names {what} `{entry}`, which is outside; {rule}.")
    return folder / entry


def checkpoint_fingerprint(path: str | os.PathLike[str] | None) -> str | None:
    """A digest that identifies a checkpoint on disk (file or folder) without reading it all.

    For every regular, non-hidden file of the folder (or the one file): its name, size,
    modification time (ns) and the sha256 of its first and last MiB. A safetensors file begins
    with its header (names, shapes, dtypes, offsets) and its data fill the rest, so a rewrite,
    a different fine-tune or a truncation changes the digest. The folder's own location does
    not enter: a copy that keeps the times (``cp -p``) has the same digest. A path that does not
    exist (a hub name) is identified by its text. ``None`` gives ``None``.
    """
    if path is None:
        return None
    target = Path(path)
    if not target.exists():
        return hashlib.sha256(f"name:{path}".encode()).hexdigest()
    files = (
        sorted(p for p in target.iterdir() if p.is_file() and not p.name.startswith("."))
        if target.is_dir()
        else [target]
    )
    digest = hashlib.sha256()
    for file in files:
        st = file.stat()
        digest.update(f"{file.name}:{st.st_size}:{st.st_mtime_ns};".encode())
        with open(file, "rb") as fh:
            digest.update(fh.read(_EDGE))
            if st.st_size > _EDGE:
                fh.seek(max(_EDGE, st.st_size - _EDGE))
                digest.update(fh.read(_EDGE))
    return digest.hexdigest()


def _check_not_quantized(path: Path, config: dict[str, Any] | None, names: list[str]) -> None:
    advice = (
        "weight statistics need full-precision weights (float16, bfloat16 or float32); "
        "dequantise it first (e.g. load it with transformers and save_pretrained in bfloat16)."
    )
    if config:
        for key in ("quantization_config", "compression_config"):
            for cfg in (config, config.get("text_config") or {}):
                if isinstance(cfg, dict) and cfg.get(key):
                    method = (cfg[key] or {}).get("quant_method", "unknown")
                    raise QuantizedCheckpointError(
                        f"Checkpoint `{path}` is quantised (config.json has `{key}`, "
                        f"quant_method {method!r}); {advice}"
                    )
    for name in names:
        if name.endswith(QUANTIZED_SUFFIXES):
            raise QuantizedCheckpointError(
                f"Checkpoint `{path}` is quantised (tensor `{name}`); {advice}"
            )


def open_checkpoint(path: str | os.PathLike[str], *, role: str = "checkpoint") -> Checkpoint:
    """Plan a checkpoint from its headers (or, for ``.bin``, from a memory-mapped load).

    Parameters
    ----------
    path : path-like
        A model folder, a ``.safetensors`` / ``.bin`` file, or an ``*.index.json``.
    role : str, default: ``"checkpoint"``
        Used in messages ("base", "fine-tune").

    Raises
    ------
    CheckpointError
        Missing, truncated or corrupt files, an inconsistent index, duplicate tensor names.
    QuantizedCheckpointError
        ``quantization_config`` in config.json, quantised tensor names, or FP8/FP4 weights.
    """
    path = Path(path)
    fmt, files, index, weight_map = _discover(path)
    folder = path if path.is_dir() else path.parent
    config = None
    if (folder / "config.json").is_file():
        config = _read_json(folder / "config.json", "Model config")
        config = config if isinstance(config, dict) else None
    if fmt == "safetensors":
        tensors = _plan_safetensors(files)
        aliases: dict[str, str] = {}
        state: dict[Path, Any] = {}
    else:
        tensors, aliases, state = _plan_torch(files)
    if weight_map is not None:
        for name, shard in weight_map.items():
            info = tensors.get(name)
            if info is None and name not in aliases:
                raise CheckpointError(
                    f"Index file `{index}` says tensor `{name}` is in shard `{shard}`, but no "
                    "shard holds it."
                )
            if info is not None and info.file.name != Path(str(shard)).name:
                raise CheckpointError(
                    f"Index file `{index}` says tensor `{name}` is in shard `{shard}`, but it is "
                    f"in `{info.file.name}`."
                )
    _check_not_quantized(path, config, list(tensors))
    fp8 = [t for t in tensors.values() if t.dtype.startswith(("F8", "F4", "F6"))]
    if fp8:
        raise QuantizedCheckpointError(
            f"Checkpoint `{path}` holds low-precision {fp8[0].dtype} weights (tensor "
            f"`{fp8[0].name}`); weight statistics need float16, bfloat16 or float32 weights."
        )
    if not tensors:
        raise CheckpointError(f"Checkpoint `{path}` ({role}) holds no tensors.")
    return Checkpoint(
        path=path,
        format=fmt,
        files=tuple(files),
        tensors=tensors,
        config=config,
        aliases=aliases,
        torch_state=state,
    )


def _plan_safetensors(files: list[Path]) -> dict[str, TensorInfo]:
    tensors: dict[str, TensorInfo] = {}
    for file in files:
        header, data_start, _ = read_safetensors_header(file)
        entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
        for name, entry in entries:
            if name in tensors:
                raise CheckpointError(
                    f"Tensor `{name}` appears in two files: `{tensors[name].file}` and `{file}`."
                )
            begin, end = entry["data_offsets"]
            tensors[name] = TensorInfo(
                name=name,
                file=file,
                dtype=entry["dtype"],
                shape=tuple(entry["shape"]),
                data_start=data_start + begin,
                nbytes=end - begin,
            )
    return tensors


def _torch_load_message(file: Path, exc: BaseException) -> str:
    import pickle

    if isinstance(exc, pickle.UnpicklingError):
        return (
            f"`{file}` is not a PyTorch state dict that loads with weights_only=True (a pickle "
            "of other objects, or a corrupt file); it is not unpickled further, for safety. "
            "Save the weights as safetensors, or torch.save(model.state_dict())."
        )
    first = " ".join(str(exc).split())[:200]
    return f"Cannot read `{file}` with torch.load(weights_only=True): {type(exc).__name__}: {first}"


def _plan_torch(
    files: list[Path],
) -> tuple[dict[str, TensorInfo], dict[str, str], dict[Path, Any]]:
    import warnings

    import torch

    tensors: dict[str, TensorInfo] = {}
    aliases: dict[str, str] = {}
    state: dict[Path, Any] = {}
    for file in files:
        check_weight_file(file)
        try:
            loaded = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise CheckpointError(f"Cannot read `{file}` with torch.load: {exc}") from None
            warnings.warn(
                f"`{file}` uses the legacy torch.save format, which cannot be memory-mapped; "
                "it is loaded whole into memory.",
                RuntimeWarning,
                stacklevel=3,
            )
            try:
                loaded = torch.load(file, map_location="cpu", weights_only=True)
            except Exception as exc:  # a non-zip pickle: refused by the weights-only unpickler
                raise CheckpointError(_torch_load_message(file, exc)) from None
        except Exception as exc:  # torch raises many types for corrupt archives
            raise CheckpointError(_torch_load_message(file, exc)) from None
        if isinstance(loaded, dict) and "state_dict" in loaded and len(loaded) <= 3:
            loaded = loaded["state_dict"]
        if not isinstance(loaded, dict) or not all(
            isinstance(v, torch.Tensor) for v in loaded.values()
        ):
            raise CheckpointError(f"`{file}` is not a state dict of tensors.")
        seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
        for name, tensor in loaded.items():
            if name in tensors:
                raise CheckpointError(
                    f"Tensor `{name}` appears in two files: `{tensors[name].file}` and `{file}`."
                )
            key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tensor.shape)
            if tensor.numel() and key in seen:
                aliases[name] = seen[key]
                continue
            seen[key] = name
            code = DTYPE_CODE_OF_TORCH.get(
                str(tensor.dtype).removeprefix("torch."), str(tensor.dtype)
            )
            tensors[name] = TensorInfo(
                name=name,
                file=file,
                dtype=code,
                shape=tuple(tensor.shape),
                data_start=None,
                nbytes=tensor.numel() * tensor.element_size(),
            )
        state[file] = loaded
    return tensors, aliases, state
