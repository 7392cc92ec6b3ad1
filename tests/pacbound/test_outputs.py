"""check_output_path and the output-folder marker (issue 15, item 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pacbound.exceptions import InvalidParameterError
from pacbound.support import OUTPUT_MARKER, atomic_dir, check_output_path, mark_output_dir


def test_atomic_dir_marks_the_folders_it_writes(tmp_path):
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("x")
    assert (tmp_path / "out" / OUTPUT_MARKER).is_file()
    # so a later command may replace it without --overwrite
    assert check_output_path(tmp_path / "out", [], kind="dir") == tmp_path / "out"


@pytest.mark.parametrize(
    ("out", "inputs", "how"),
    [
        ("runs", ["runs"], "which is the input"),
        ("runs/fit", ["runs"], "is inside the input"),
        ("parent", ["parent/runs"], "contains the input"),
        ("link", ["runs"], "which is the input"),  # a symlink to the input is the input
    ],
)
def test_an_output_that_is_contains_or_is_inside_an_input_is_refused(
    tmp_path, monkeypatch, out, inputs, how
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "parent" / "runs").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "runs")
    with pytest.raises(InvalidParameterError, match=how):
        check_output_path(out, inputs, kind="dir", overwrite=True)


def test_a_foreign_folder_needs_overwrite(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InvalidParameterError, match="--overwrite"):
        check_output_path(tmp_path / "mine", [], kind="dir")
    assert check_output_path(tmp_path / "mine", [], kind="dir", overwrite=True)
    # a command that only adds its files beside others does not need the marker
    assert check_output_path(tmp_path / "mine", [], kind="dir", replaces=False)


def test_a_resumable_job_folder_is_the_toolkits(tmp_path):
    """A folder holding only a killed job's hidden journal is resumed, not refused."""
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / ".weight_stats.journal.jsonl").write_text("{}\n")
    assert check_output_path(tmp_path / "job", [], kind="dir")
    (tmp_path / "empty").mkdir()
    assert check_output_path(tmp_path / "empty", [], kind="dir")
    mark_output_dir(tmp_path / "new" / "deep")
    assert (tmp_path / "new" / "deep" / OUTPUT_MARKER).is_file()


def test_file_and_folder_kinds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    with pytest.raises(InvalidParameterError, match="existing file"):
        check_output_path("afile", [], kind="dir")
    with pytest.raises(InvalidParameterError, match="a folder"):
        check_output_path("adir", [], kind="file")
    with pytest.raises(InvalidParameterError, match="current folder"):
        check_output_path(".", [], kind="dir", overwrite=True)
    with pytest.raises(InvalidParameterError, match="current folder"):
        check_output_path("..", [], kind="dir", overwrite=True)
    assert check_output_path("afile", [], kind="file") == Path("afile")  # replaced atomically
    # inputs that are not paths (hub ids, mlflow:...) or None are skipped
    assert check_output_path("new.csv", [None, "mlflow:exp", "org/model"], kind="file")


def test_a_symlink_loop_is_one_clear_error(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(InvalidParameterError, match="cannot be resolved"):
        check_output_path(tmp_path / "out.csv", [tmp_path / "loop"], kind="file")
    assert os.path.lexists(tmp_path / "loop")
