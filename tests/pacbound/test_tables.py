"""pacbound.support.read_table / write_table: one suffix set, exact round trips, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pacbound.exceptions import InputFileError, InvalidParameterError
from pacbound.support import TABLE_SUFFIXES, read_table, table_format, write_table


class _MyError(InputFileError):
    pass


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "n": [8, 16, 32],
            "loss": [0.1, 1 / 3, 2.0**-40],  # need 17 significant digits to round-trip
            "text": ["x, y", 'say "hi"', "tab\there"],
        }
    )


@pytest.mark.parametrize("suffix", TABLE_SUFFIXES)
def test_round_trip_per_suffix(tmp_path, suffix):
    frame = _frame()
    out = write_table(frame, tmp_path / f"t{suffix.upper()}")  # suffixes are case-insensitive
    back = read_table(out)
    assert list(back.columns) == list(frame.columns)
    assert back["run_id"].tolist() == ["a", "b", "c"]
    assert back["n"].tolist() == [8, 16, 32]
    assert back["text"].tolist() == frame["text"].tolist()
    assert back["loss"].to_numpy(dtype=float).tobytes() == frame["loss"].to_numpy().tobytes()
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


def test_nested_cells_and_non_finite_values(tmp_path):
    frame = pd.DataFrame({"ids": [[1, 2], [3]], "meta": [{"k": 1}, {}], "x": [np.nan, np.inf]})
    csv = write_table(frame, tmp_path / "t.csv")
    assert read_table(csv, text=True)["ids"].tolist() == ["[1, 2]", "[3]"]  # JSON, not repr
    lines = [json.loads(line) for line in write_table(frame, tmp_path / "t.jsonl").open()]
    assert lines == [
        {"ids": [1, 2], "meta": {"k": 1}, "x": None},
        {"ids": [3], "meta": {}, "x": None},
    ]
    as_json = json.loads((write_table(frame, tmp_path / "t.json")).read_text())
    assert as_json == lines  # .json is a proper JSON list of objects


def test_text_keeps_csv_cells_verbatim(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("prompt,answer\nNA,007\n,1.50\n")
    assert read_table(path, text=True).to_dict("list") == {
        "prompt": ["NA", ""],
        "answer": ["007", "1.50"],
    }
    parsed = read_table(path)
    assert parsed["prompt"].isna().all() and parsed["answer"].tolist() == [7.0, 1.5]


def test_json_layouts(tmp_path):
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    expected = pd.DataFrame(rows)
    layouts = {
        "list.json": json.dumps(rows),
        "data.json": json.dumps({"data": rows}),
        "examples.json": json.dumps({"examples": rows}),
        "columns.json": pd.DataFrame(rows).to_json(),  # pandas' default {column: {row: value}}
        "lists.json": json.dumps({"a": [1, 2], "b": ["x", "y"]}),
        "lines.json": "\n".join(json.dumps(r) for r in rows),
    }
    for name, text in layouts.items():
        (tmp_path / name).write_text(text)
        pd.testing.assert_frame_equal(read_table(tmp_path / name), expected, obj=name)
    (tmp_path / "scalar.json").write_text("3")
    with pytest.raises(InputFileError, match=r"scalar.json: a .json table must be a list"):
        read_table(tmp_path / "scalar.json")


def test_unknown_suffix_names_path_suffix_and_allowed_set(tmp_path):
    allowed = r"\.csv, \.tsv, \.jsonl, \.json, \.parquet, \.pq"
    with pytest.raises(
        InvalidParameterError,
        match=rf"t\.xlsx: a table file must end in one of {allowed}; got suffix '\.xlsx'\.",
    ):
        write_table(_frame(), tmp_path / "t.xlsx")
    assert not list(tmp_path.iterdir())
    (tmp_path / "t.txt").write_text("a\n1\n")
    with pytest.raises(_MyError, match=r"t\.txt: a runs file must end in one of .*'\.txt'"):
        read_table(tmp_path / "t.txt", error=_MyError, what="runs")
    with pytest.raises(InvalidParameterError, match="got no suffix"):
        table_format(tmp_path / "noext")
    assert table_format("x.PQ") == "parquet"


def test_missing_folder_and_unreadable_files(tmp_path):
    with pytest.raises(_MyError, match=r"none\.csv: the table file does not exist"):
        read_table(tmp_path / "none.csv", error=_MyError)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputFileError, match=r"dir\.csv: is a folder"):
        read_table(tmp_path / "dir.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(_MyError, match=r"bad\.parquet: not a readable PARQUET table file"):
        read_table(tmp_path / "bad.parquet", error=_MyError)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputFileError, match=r"empty\.csv: not a readable CSV table file"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n[1]\n')
    with pytest.raises(_MyError, match=r"bad\.jsonl: line 2 must be a JSON object"):
        read_table(tmp_path / "bad.jsonl", error=_MyError)


class _Boom:
    """A cell value whose JSON encoding fails after part of the file has been written."""

    def __str__(self) -> str:
        raise RuntimeError("cannot encode")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_write_is_atomic(tmp_path, suffix):
    out = tmp_path / f"t{suffix}"
    write_table(_frame(), out)
    before = out.read_bytes()
    rows = [{"x": i} for i in range(1000)] + [{"x": _Boom()}]
    with pytest.raises(RuntimeError, match="cannot encode"):
        write_table(pd.DataFrame(rows), out)
    assert out.read_bytes() == before  # the old table, whole
    with pytest.raises(RuntimeError):
        write_table(pd.DataFrame(rows), tmp_path / f"new{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no partial file
