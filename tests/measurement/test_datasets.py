"""Datasets: every supported format, chat rendering, column mappings, and every bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from measurement import ExampleSet, load_examples, write_table
from measurement.exceptions import DatasetError
from pacbound.exceptions import InvalidParameterError, TradeoffError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_jsonl_reads_pairs_ids_and_answers(data_jsonl, rows):
    ex = load_examples(data_jsonl)
    assert isinstance(ex, ExampleSet)
    assert len(ex) == len(rows)
    assert ex.kind == "prompt-completion"
    assert ex.prompts[1] == rows[1][0] and ex.completions[1] == rows[1][1]
    assert ex.example_ids[:2] == ["ex0", "ex1"]
    assert ex.table.columns[0] == "example_id"
    assert ex.answers[0] == "5" and ex.answers[9] is None
    assert "split" in ex.table.columns
    assert "12 prompt-completion examples" in str(ex)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_other_formats_give_the_same_examples(tmp_path, records, data_jsonl, suffix):
    frame = pd.DataFrame(records)
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        path.write_text(json.dumps(records))
    ref = load_examples(data_jsonl)
    got = load_examples(path)
    assert got.prompts == ref.prompts
    assert got.completions == ref.completions
    assert [str(i) for i in got.example_ids] == [str(i) for i in ref.example_ids]


def test_hf_datasets_folder_and_dataset_dict(tmp_path, records, rows):
    import datasets

    ds = datasets.Dataset.from_list(records)
    ds.save_to_disk(tmp_path / "one")
    assert load_examples(tmp_path / "one").prompts[0] == rows[0][0]
    dd = datasets.DatasetDict({"train": ds.select(range(4)), "test": ds.select(range(4, 12))})
    dd.save_to_disk(tmp_path / "two")
    assert len(load_examples(tmp_path / "two", split="test")) == 8
    with pytest.raises(InvalidParameterError, match=r"`split` must be one of \['test', 'train'\]"):
        load_examples(tmp_path / "two")
    with pytest.raises(InvalidParameterError, match="got 'valid'"):
        load_examples(tmp_path / "two", split="valid")


def test_column_mapping(tmp_path, jsonl_writer):
    path = jsonl_writer(
        tmp_path / "q.jsonl",
        [{"uid": 7, "question": "What is 2 + 3?", "solution": " 5", "gold": "5"}],
    )
    ex = load_examples(
        path, columns="prompt=question,completion=solution,answer=gold,example_id=uid"
    )
    assert ex.prompts == ("What is 2 + 3?",) and ex.completions == (" 5",)
    assert ex.example_ids == [7] and ex.answers == ("5",)
    with pytest.raises(InvalidParameterError, match="`columns` keys must be one of"):
        load_examples(path, columns={"question": "prompt"})
    with pytest.raises(InvalidParameterError, match="field=column pairs"):
        load_examples(path, columns="prompt")
    with pytest.raises(DatasetError, match=r"column 'nope' \(mapped to 'prompt'\) is missing"):
        load_examples(path, columns={"prompt": "nope"})


def test_chat_messages_render_with_the_template(tmp_path, tokenizer, jsonl_writer):
    conv = [
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "The answer is 5."},
    ]
    path = jsonl_writer(tmp_path / "chat.jsonl", [{"messages": conv}])
    ex = load_examples(path, tokenizer=tokenizer)
    assert ex.kind == "chat"
    assert ex.prompts[0] == "<|user|>What is 2 + 3?</s><|assistant|>"
    assert ex.completions[0] == "The answer is 5.</s>"
    whole = tokenizer.apply_chat_template(conv, tokenize=False)
    assert ex.prompts[0] + ex.completions[0] == whole
    # a parquet file stores the messages as arrays of structs: same result
    pd.DataFrame({"messages": [conv]}).to_parquet(tmp_path / "chat.parquet")
    assert load_examples(tmp_path / "chat.parquet", tokenizer=tokenizer).prompts == ex.prompts


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", r"line 1 is not valid JSON"),
        ('{"prompt": "a", "completion": "b"}\n[1, 2]\n', r"line 2 must be a JSON object"),
        (
            '{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "  "}\n',
            r"row 1, field 'completion' is empty",
        ),
        ('{"prompt": "a", "completion": 3}\n', r"row 0, field 'completion' must be text; got int"),
        ('{"question": "a", "completion": "b"}\n', r"column 'prompt' is missing; the file has"),
        (
            '{"id": 1, "prompt": "a", "completion": "b"}\n{"id": 1, "prompt": "c", '
            '"completion": "d"}\n',
            r"row 1 repeats id 1",
        ),
        ("\n", r"the dataset has no rows"),
    ],
)
def test_bad_jsonl_names_the_file_and_row(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        load_examples(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, TradeoffError)


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([{"role": "user", "content": "hi"}], "at least two messages"),
        (
            [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}],
            "last message must have role 'assistant'; got 'user'",
        ),
        (
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": " "}],
            "last assistant message is empty",
        ),
        ([{"role": "user"}, {"role": "assistant", "content": "y"}], "must have `role` and"),
    ],
)
def test_bad_chat_rows(tmp_path, tokenizer, jsonl_writer, messages, message):
    path = jsonl_writer(tmp_path / "chat.jsonl", [{"messages": messages}])
    with pytest.raises(DatasetError, match=message):
        load_examples(path, tokenizer=tokenizer)


def test_chat_needs_a_tokenizer_with_a_template(tmp_path, jsonl_writer):
    conv = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    path = jsonl_writer(tmp_path / "chat.jsonl", [{"messages": conv}])
    with pytest.raises(InvalidParameterError, match="must have a chat template"):
        load_examples(path)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_examples(tmp_path / "absent.jsonl")
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"got suffix '\.txt'"):
        load_examples(tmp_path / "data.txt")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DatasetError, match="not a dataset folder"):
        load_examples(tmp_path / "empty_dir")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_write_table_round_trips_with_added_columns(tmp_path, data_jsonl, rows, suffix):
    ex = load_examples(data_jsonl).with_columns(score=list(range(len(rows))))
    out = write_table(ex.table, tmp_path / f"out{suffix}")
    back = load_examples(out)
    assert back.prompts == ex.prompts
    assert list(pd.to_numeric(back.table["score"])) == list(range(len(rows)))
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind
    with pytest.raises(InvalidParameterError, match=r"out.xlsx: a table file must end in one"):
        write_table(ex.table, tmp_path / "out.xlsx")
    with pytest.raises(InvalidParameterError, match="one value per example"):
        ex.with_columns(score=[1, 2])


def test_subset_keeps_rows_aligned(data_jsonl, rows):
    ex = load_examples(data_jsonl)
    sub = ex.subset([3, 1])
    assert sub.example_ids == ["ex3", "ex1"]
    assert sub.prompts == (rows[3][0], rows[1][0])
    assert sub.answers == ("7", "42")
    assert sub.to_dict()["n_examples"] == 2
