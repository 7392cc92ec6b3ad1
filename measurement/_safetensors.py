"""The safetensors file format: dtype codes, and a header read and checked before any data.

A safetensors file is an 8-byte little-endian header length ``N``, an ``N``-byte JSON header
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`` and then the
data, which starts at byte ``8 + N``. We parse that header ourselves and check it against the
format's rules and against the file size *before any tensor is read*, so that a truncated or
corrupt file fails at planning time with a message that names the file and the tensor.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

from measurement.exceptions import CheckpointError

__all__ = [
    "DTYPE_BITS",
    "DTYPE_CODE_OF_TORCH",
    "FLOAT_DTYPES",
    "TORCH_DTYPE_NAMES",
    "check_weight_file",
    "check_weight_files",
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

TORCH_DTYPE_NAMES = {
    "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64",
    "I8": "int8", "U8": "uint8", "I16": "int16", "I32": "int32", "I64": "int64", "BOOL": "bool",
    "U16": "uint16", "U32": "uint32", "U64": "uint64", "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
}  # fmt: skip
DTYPE_CODE_OF_TORCH = {v: k for k, v in TORCH_DTYPE_NAMES.items()}

_MAX_HEADER = 100_000_000  # the safetensors library's own limit on the header size

# the first bytes of a Git LFS pointer file (what a clone without `git lfs pull` holds)
_LFS_POINTER = b"version https://git-lfs"


def check_weight_file(path: str | os.PathLike[str]) -> Path:
    """Refuse a weights file that is empty or a Git LFS pointer (not the weights themselves).

    Raises
    ------
    CheckpointError
        The file has zero bytes, or is a Git LFS pointer (the text ``version
        https://git-lfs...`` that a clone holds until ``git lfs pull`` fetches the data).
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"`{path}` is empty (0 bytes): an interrupted save or download.")
    with open(path, "rb") as fh:
        head = fh.read(len(_LFS_POINTER))
    if head == _LFS_POINTER:
        raise CheckpointError(
            f"`{path}` is a Git LFS pointer ({size} bytes), not the weights; fetch them with "
            "`git lfs pull` (or download the file itself)."
        )
    return path


def check_weight_files(folder: str | os.PathLike[str]) -> None:
    """Check every weights file of a model or adapter folder before a library loads it:
    :func:`check_weight_file` for each, and :func:`read_safetensors_header` for safetensors
    (a truncated file is refused here, naming it, instead of deep inside the loader)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for file in sorted(folder.iterdir()):
        if file.suffix in (".safetensors", ".bin", ".pt", ".pth") and file.is_file():
            check_weight_file(file)
            if file.suffix == ".safetensors":
                read_safetensors_header(file)


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
    if size > 0:
        check_weight_file(path)
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
