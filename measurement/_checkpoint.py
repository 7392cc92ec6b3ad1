"""Plan a checkpoint from its headers alone: names, shapes, dtypes and byte offsets.

A safetensors file is an 8-byte little-endian header length ``N``, an ``N``-byte JSON header
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`` and then the
data, which starts at byte ``8 + N``. We parse that header ourselves and check it against the
format's rules and against the file size *before any tensor is read*, so that a truncated or
corrupt file fails at planning time with a message that names the file and the tensor.

Accepted inputs: a Hugging Face model folder (``model.safetensors``, or shards listed in
``model.safetensors.index.json``, or ``pytorch_model.bin`` / ``pytorch_model.bin.index.json``),
a single ``.safetensors`` file, or a single ``.bin``/``.pt`` file. ``.bin`` files are opened
with ``torch.load(weights_only=True, mmap=True)``, which maps them without reading the data.
Quantised checkpoints are refused.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measurement.exceptions import CheckpointError, QuantizedCheckpointError

__all__ = [
    "DTYPE_BITS",
    "FLOAT_DTYPES",
    "Checkpoint",
    "TensorInfo",
    "open_checkpoint",
    "read_safetensors_header",
]

#: safetensors dtype code -> bits per element.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip

#: Full-precision floating dtypes: the only ones whose statistics we compute.
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")

_TORCH_NAMES = {
    "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64",
    "I8": "int8", "U8": "uint8", "I16": "int16", "I32": "int32", "I64": "int64", "BOOL": "bool",
    "U16": "uint16", "U32": "uint32", "U64": "uint64", "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
}  # fmt: skip
_CODE_OF_TORCH = {v: k for k, v in _TORCH_NAMES.items()}

#: Tensor-name endings that only quantised checkpoints carry (GPTQ, AWQ, bitsandbytes, FP8,
#: compressed-tensors, HQQ).
QUANTIZED_SUFFIXES = (
    ".qweight", ".qzeros", ".g_idx", ".scales", ".weight_scale_inv", ".weight_scale",
    ".input_scale", ".weight_zero_point", ".weight_packed", ".weight_shape", ".absmax",
    ".quant_map", ".nested_absmax", ".nested_quant_map", ".SCB", ".weight_format",
    ".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4", ".W_q",
)  # fmt: skip

_MAX_HEADER = 100_000_000  # the safetensors library's own limit on the header size
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
        return _TORCH_NAMES.get(self.dtype, self.dtype)

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


def read_safetensors_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], int, int]:
    """Read and validate the header of a safetensors file, without reading tensor data.

    Returns
    -------
    header : dict
        ``name -> {"dtype", "shape", "data_offsets"}``, ``__metadata__`` removed.
    data_start : int
        Byte offset of the data block (``8 + N``).
    file_size : int
        Size of the file in bytes.

    Raises
    ------
    CheckpointError
        When the file is shorter than its header says, the header is not valid JSON, a
        tensor entry is malformed, its byte span does not match its shape and dtype, spans
        overlap or leave gaps, or the data run past the end of the file (truncated).
    """
    path = Path(path)
    size = path.stat().st_size
    where = f"`{path}`"
    if size < 8:
        raise CheckpointError(
            f"{where} is not a valid safetensors file: it has {size} bytes, fewer than the "
            "8-byte header length."
        )
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > _MAX_HEADER or 8 + n > size:
            raise CheckpointError(
                f"{where} is truncated or not a safetensors file: its header length field "
                f"says {n} bytes but the file has {size} bytes in all."
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{where} has a corrupt header: it is not valid UTF-8 JSON ({exc})."
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where} has a corrupt header: expected a JSON object.")
    header.pop("__metadata__", None)
    data_start = 8 + n
    spans = []
    for name, entry in header.items():
        _check_entry(where, name, entry)
        begin, end = entry["data_offsets"]
        spans.append((begin, end, name))
    spans.sort()
    cursor, last = 0, None
    for begin, end, name in spans:
        if begin < cursor:
            raise CheckpointError(
                f"{where} has a corrupt header: tensor `{name}` (bytes {begin}-{end}) overlaps "
                f"tensor `{last}`."
            )
        if begin > cursor:
            raise CheckpointError(
                f"{where} has a corrupt header: {begin - cursor} bytes before tensor `{name}` "
                "belong to no tensor."
            )
        cursor, last = end, name
    if data_start + cursor > size:
        raise CheckpointError(
            f"{where} is truncated: its header places tensor data up to byte "
            f"{data_start + cursor} (tensor `{last}` ends there) but the file has only "
            f"{size} bytes."
        )
    return header, data_start, size


def _check_entry(where: str, name: str, entry: Any) -> None:
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        raise CheckpointError(
            f"{where} has a corrupt header: tensor `{name}` must have dtype, shape and "
            f"data_offsets; got {entry!r}."
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPE_BITS:
        raise CheckpointError(
            f"{where} has a corrupt header: tensor `{name}` has unknown dtype {dtype!r}."
        )
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise CheckpointError(
            f"{where} has a corrupt header: tensor `{name}` shape must be a list of "
            f"non-negative integers; got {shape!r}."
        )
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise CheckpointError(
            f"{where} has a corrupt header: tensor `{name}` data_offsets must be "
            f"[begin, end] with 0 <= begin <= end; got {offsets!r}."
        )
    need = math.ceil(math.prod(shape) * DTYPE_BITS[dtype] / 8)
    if offsets[1] - offsets[0] != need:
        raise CheckpointError(
            f"{where} has a corrupt header: tensor `{name}` of shape {shape} and dtype {dtype} "
            f"needs {need} bytes but its data_offsets {offsets} span {offsets[1] - offsets[0]}."
        )


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{what} `{path}` is not valid JSON ({exc}).") from None


def _discover(path: Path) -> tuple[str, list[Path], Path | None]:
    """Return (format, weight files, index file or None) for a user-given path."""
    if not path.exists():
        raise CheckpointError(f"Checkpoint `{path}` does not exist.")
    if path.is_file():
        name = path.name
        if name.endswith(".index.json"):
            fmt = "safetensors" if ".safetensors." in name else "torch"
            return fmt, _index_files(path), path
        if name.endswith(".safetensors"):
            return "safetensors", [path], None
        if name.endswith((".bin", ".pt", ".pth")):
            return "torch", [path], None
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
            return fmt, _index_files(path / index_name), path / index_name
    if (path / "model.safetensors").exists():
        return "safetensors", [path / "model.safetensors"], None
    if (path / "pytorch_model.bin").exists():
        return "torch", [path / "pytorch_model.bin"], None
    found = sorted(path.glob("*.safetensors"))
    if found:
        return "safetensors", found, None
    raise CheckpointError(
        f"No weights found in folder `{path}`: looked for model.safetensors, "
        f"{_SAFETENSORS_INDEX}, pytorch_model.bin, {_BIN_INDEX} and *.safetensors."
    )


def _index_files(index: Path) -> list[Path]:
    data = _read_json(index, "Index file")
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(
            f"Index file `{index}` must hold a non-empty `weight_map` object; got "
            f"{type(weight_map).__name__}."
        )
    files = []
    for shard in dict.fromkeys(weight_map.values()):
        shard_path = index.parent / str(shard)
        if not shard_path.is_file():
            names = [k for k, v in weight_map.items() if v == shard][:3]
            raise CheckpointError(
                f"Index file `{index}` lists shard `{shard}` (for tensors such as "
                f"{', '.join(names)}) but `{shard_path}` does not exist."
            )
        files.append(shard_path)
    return files


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
    fmt, files, index = _discover(path)
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
    if index is not None:
        weight_map = _read_json(index, "Index file")["weight_map"]
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


def _plan_torch(
    files: list[Path],
) -> tuple[dict[str, TensorInfo], dict[str, str], dict[Path, Any]]:
    import warnings

    import torch

    tensors: dict[str, TensorInfo] = {}
    aliases: dict[str, str] = {}
    state: dict[Path, Any] = {}
    for file in files:
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
            loaded = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for corrupt archives
            raise CheckpointError(
                f"Cannot read `{file}` with torch.load(weights_only=True): {exc}"
            ) from None
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
            code = _CODE_OF_TORCH.get(str(tensor.dtype).removeprefix("torch."), str(tensor.dtype))
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
