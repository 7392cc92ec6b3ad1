"""File helpers (pacbound.support._io): reading JSON Lines."""

from __future__ import annotations

import pytest

from pacbound.exceptions import InputFileError
from pacbound.support._io import read_jsonl_records


class _CustomFileError(InputFileError):
    pass


def test_read_jsonl_records(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": 0.1234567890123456789}\n', encoding="utf-8")
    assert read_jsonl_records(path) == [{"a": 1}, {"a": 0.12345678901234568}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"a": 1}\n{"a": x}\n',
            r"rows\.jsonl: line 2 is not valid JSON \(Expecting value at column 7\)\.$",
        ),
        ('{"a": 1}\n\n[1, 2]\n', r"rows\.jsonl: line 3 must be a JSON object; got list\.$"),
    ],
)
def test_read_jsonl_records_names_the_bad_line(tmp_path, text, message):
    path = tmp_path / "rows.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(_CustomFileError, match=message):
        read_jsonl_records(path, error=_CustomFileError)
