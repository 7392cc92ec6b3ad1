"""Folder-name patterns and metadata merging."""

from __future__ import annotations

import pytest

from fits.exceptions import MetadataConflictError, RunsFileError
from fits.runs._metadata import FolderPattern, coerce_value, merge_metadata
from fits.runs._record import RunRecord
from pacbound.exceptions import InvalidParameterError


def test_pattern_matches_innermost_component():
    pat = FolderPattern("d={d}_n={n}_seed={seed}")
    assert pat.match(["checkpoint-4", "d=0.5_n=64_seed=2", "sweep"]) == {
        "difficulty": 0.5,
        "n": "64",
        "seed": "2",
    }
    assert pat.match(["nothing here"]) is None
    assert FolderPattern("{label}-{n}").match(["hard-100"]) == {
        "difficulty_label": "hard",
        "n": "100",
    }
    assert FolderPattern("bin={d}_n={n}").match(["bin=medium_n=8"]) == {
        "difficulty_label": "medium",
        "n": "8",
    }
    with pytest.raises(InvalidParameterError, match="each placeholder once"):
        FolderPattern("{n}_{n}")


def test_merge_reports_the_conflicting_sources():
    rec = RunRecord("r", "hf", "/x/r")
    rec.meta = [
        ("run_meta.json", {"n": 64, "seed": 1}),
        ("folder pattern", {"n": "64", "seed": "2"}),
    ]
    with pytest.raises(
        MetadataConflictError,
        match=r"/x/r: field `seed` of run 'r' is 1 in run_meta.json but 2 in folder pattern",
    ):
        merge_metadata(rec)
    rec.meta = [("a", {"n": 64, "lr": "1e-3"}), ("b", {"n": 64.0, "lr": 0.001})]
    assert merge_metadata(rec) == {"n": 64, "lr": 0.001}


def test_coercion_messages():
    assert coerce_value("n", "12", "f") == 12 and coerce_value("difficulty", "2.5", "f") == 2.5
    assert coerce_value("versions.torch", "2.10", "f") == "2.10"
    assert coerce_value("seed", float("nan"), "f") is None
    with pytest.raises(RunsFileError, match=r"f: field `seed` must be an integer; got 'x'"):
        coerce_value("seed", "x", "f")
    with pytest.raises(RunsFileError, match=r"f: field `test_loss` must be a number; got 'bad'"):
        coerce_value("test_loss", "bad", "f")
