"""Reading and checking safetensors headers before any tensor data is read."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from measurement._safetensors import read_safetensors_header
from measurement.exceptions import CheckpointError
from pacbound.exceptions import InputFileError


def _write_raw(path: Path, header: dict, data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.mark.parametrize(
    ("header", "data", "match"),
    [
        ("not json", b"", "not valid UTF-8 JSON"),
        (
            {"w": {"dtype": "F32", "shape": [2]}},
            b"\0" * 8,
            "must have dtype, shape and data_offsets",
        ),
        ({"w": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unknown dtype"),
        (
            {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
            b"\0" * 8,
            "needs 12 bytes",
        ),
        ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "non-negative"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            "overlaps tensor `a`",
        ),
        (
            {"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
            b"\0" * 12,
            "belong to no tensor",
        ),
    ],
)
def test_corrupt_headers_name_file_and_tensor(tmp_path, header, data, match):
    path = tmp_path / "bad.safetensors"
    if isinstance(header, str):
        raw = header.encode()
        path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    else:
        _write_raw(path, header, data)
    with pytest.raises(CheckpointError, match=match) as info:
        read_safetensors_header(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, InputFileError)
