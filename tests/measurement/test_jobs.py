"""Resumable journals and progress bars."""

from __future__ import annotations

import json

import pytest

from measurement._jobs import Journal, journal_path
from pacbound.support import byte_progress, progress_bar


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
    with pytest.warns(UserWarning, match="another job"):
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


def test_journal_as_a_context_manager_keeps_it_only_after_a_failure(tmp_path):
    path = journal_path(tmp_path / "out.parquet")
    with pytest.raises(RuntimeError), Journal(path, {"job": "c"}) as book:
        book.record("unit-0", 1)
        raise RuntimeError("killed")
    assert path.exists()
    with Journal(path, {"job": "c"}) as book:
        assert book.done == {"unit-0": 1}  # resumed
        book.record("unit-1", 2)
    assert not path.exists()  # the job completed


def test_journal_ignores_unreadable_or_foreign_lines(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"\xff\xfe not text")
    book = Journal(path, {"job": "d"})
    assert book.done == {}
    book.close(remove=False)
    path.write_text(json.dumps({"fingerprint": {"job": "d"}}) + '\n{"key": "a", "value": 1}\n')
    book = Journal(path, {"job": "d"})
    assert book.done == {}  # an entry without a payload ends the read
    book.close(remove=False)
    assert json.loads(path.read_text().splitlines()[0]) == {"fingerprint": {"job": "d"}}


def test_byte_progress_counts_bytes(capsys):
    with byte_progress("weights", 10**6, enabled=False) as advance:
        advance(10**6)
    with byte_progress("weights", 2 * 10**6, enabled=True) as advance:
        advance(10**6)
        advance(10**6)
    captured = capsys.readouterr()
    assert captured.out == "" and "weights" in captured.err and "2.0/2.0 MB" in captured.err


def test_a_journal_of_another_job_is_discarded_with_a_warning(tmp_path):
    """A mismatch starts afresh and says so, naming what differs (issue 15, item 1)."""
    path = journal_path(tmp_path / "out.parquet")
    book = Journal(path, {"model": "aaa", "data": "d1", "n": 3})
    book.record("unit-0", 1.0)
    book.close(remove=False)
    with pytest.warns(UserWarning, match=r"another job \(it differs in: data, model\)") as caught:
        other = Journal(path, {"model": "bbb", "data": "d2", "n": 3})
    assert "1 finished unit" in str(caught[0].message) and str(path) in str(caught[0].message)
    assert other.done == {}
    other.close(remove=True)


def test_checkpoint_fingerprint_follows_content_not_location(tmp_path, full_finetune):
    """The weights fingerprint: equal for a same-time copy, changed by one flipped byte."""
    import os
    import shutil

    from measurement import checkpoint_fingerprint

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(full_finetune, a, copy_function=shutil.copy2)
    shutil.copytree(full_finetune, b, copy_function=shutil.copy2)
    assert checkpoint_fingerprint(a) == checkpoint_fingerprint(b)
    st = (b / "model.safetensors").stat()
    data = bytearray((b / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF  # the last byte of the last tensor: same size, same time
    (b / "model.safetensors").write_bytes(bytes(data))
    os.utime(b / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert checkpoint_fingerprint(a) != checkpoint_fingerprint(b)
    assert checkpoint_fingerprint(tmp_path / "missing") != checkpoint_fingerprint(a)
