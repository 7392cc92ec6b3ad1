"""Resumable journals and progress bars."""

from __future__ import annotations

import json

from measurement._jobs import Journal, journal_path, progress_bar


def test_journal_records_resumes_and_ignores_a_cut_line(tmp_path):
    path = journal_path(tmp_path / "out.parquet")
    assert path.name == ".out.parquet.journal.jsonl"
    book = Journal(path, {"job": "a", "n": 3})
    book.record("unit-0", {"value": 1.5})
    book.record("unit-1", [1, 2])
    book.close(remove=False)
    with open(path, "a") as fh:
        fh.write('{"key": "unit-2", "payl')  # a kill in the middle of a write
    again = Journal(path, {"job": "a", "n": 3})
    assert again.done == {"unit-0": {"value": 1.5}, "unit-1": [1, 2]}
    again.record("unit-2", 3)
    again.close(remove=False)
    lines = path.read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines[1:]] == ["unit-0", "unit-1", "unit-2"]
    other = Journal(path, {"job": "b"})  # another job: starts afresh
    assert other.done == {}
    other.close(remove=True)
    assert not path.exists()


def test_journal_without_a_path_keeps_nothing(tmp_path):
    book = Journal(None, {"job": 1})
    book.record("x", 1)
    assert book.done == {"x": 1}
    book.close(remove=True)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_counts(capsys):
    with progress_bar("work", 3, enabled=False) as advance:
        advance(3)
    with progress_bar("work", 2, enabled=True) as advance:
        advance(1)
        advance(1)
    captured = capsys.readouterr()
    assert captured.out == ""  # bars go to stderr only
    assert "work" in captured.err and "2/2" in captured.err
