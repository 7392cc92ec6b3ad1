"""The runs table: one row per fine-tuning run, whatever format the run was logged in.

:func:`load_runs` reads Hugging Face output folders, sweep run folders, LlamaFactory logs, W&B CSV
exports, TensorBoard event files, MLflow and plain tables, and returns the canonical table of
``docs/contracts.md``::

    run_id, source, difficulty, difficulty_label, n, n_tokens, seed, base_model, train_loss,
    test_loss, train_acc, test_acc, kl, sq_dist, lr, epochs, steps, budget_mode,
    test_loss_<slice>, test_acc_<slice>   (+ path, train_loss_avg, train_loss_logged, ...)

Metadata (difficulty, n, seed, base model, ...) comes from a sidecar file (``run_meta.json``),
from columns, from a metadata table keyed by ``run_id``, or from folder names through a pattern
such as ``d={d}_n={n}_seed={seed}``. When two sources give a field different values the loader
raises :class:`~fits.exceptions.MetadataConflictError` naming the file and the field.

The run-average ``train_loss`` that Hugging Face writes at the end of training is never used as
the final training loss; the canonical ``train_loss`` comes from an evaluation of the final model
on its own training subset (``eval_train_loss``), and the average is kept as ``train_loss_avg``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fits.exceptions import MetadataConflictError, RunsFileError
from fits.runs._events import read_mlflow
from fits.runs._hf import read_path
from fits.runs._metadata import (
    INT_FIELDS,
    TEXT_FIELDS,
    FolderPattern,
    coerce_value,
    is_missing,
    merge_metadata,
    same_value,
    to_float,
)
from fits.runs._record import (
    RUN_COLUMNS,
    SIDECAR,
    TEST_SLICE,
    TRAIN_SLICES,
    RunRecord,
    metrics_to_columns,
)
from fits.runs._tables import read_any_table, read_table_frame
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_choice

__all__ = ["FORMATS", "load_runs"]

FORMATS = ("auto", "sweep", "hf", "llamafactory", "wandb", "tensorboard", "table")


def load_runs(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | pd.DataFrame,
    *,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    pattern: str | None = None,
    metadata: str | os.PathLike[str] | pd.DataFrame | None = None,
    difficulty_values: Mapping[str, float] | None = None,
    train_slices: Sequence[str] = TRAIN_SLICES,
    test_slice: str = TEST_SLICE,
) -> pd.DataFrame:
    """Load fine-tuning runs from files or folders into the canonical runs table.

    Parameters
    ----------
    sources : path, sequence of paths, or DataFrame
        Sweep folders (``<sweep>/runs/<run_id>/``), Hugging Face output folders (with
        ``trainer_state.json``, ``all_results.json`` or ``checkpoint-*``), folders holding such
        run folders, LlamaFactory ``trainer_log.jsonl``, W&B CSV exports, TensorBoard logdirs or
        event files, plain CSV/JSONL/Parquet tables in the canonical column names, and MLflow
        experiments as ``"mlflow:<experiment>[@<tracking uri>]"``.
    format : {"auto", "sweep", "hf", "llamafactory", "wandb", "tensorboard", "table"}, default "auto"
        Force one reader instead of detecting it from the files.
    columns : mapping, optional
        For tables: canonical name -> the table's column name, e.g. ``{"test_loss": "val"}``.
    pattern : str, optional
        Folder/run-name pattern for metadata, e.g. ``"d={d}_n={n}_seed={seed}"``.
    metadata : path or DataFrame, optional
        A table with a ``run_id`` column and metadata columns (``difficulty``, ``n``, ...).
    difficulty_values : mapping, optional
        Numeric difficulty for each difficulty label (e.g. ``{"easy": 1, "hard": 3}``).
    train_slices, test_slice : str
        Eval-set names whose ``eval_<name>_loss`` is the training loss (the final model on its own
        training subset) and the test loss.

    Returns
    -------
    pandas.DataFrame
        One row per run, canonical columns first (see module docstring).

    Raises
    ------
    fits.exceptions.RunsFileError
        A file is malformed or a run lacks its difficulty or budget.
    fits.exceptions.MetadataConflictError
        Two metadata sources disagree.
    """
    check_choice(format, "format", FORMATS)
    folder_pattern = FolderPattern(pattern) if pattern is not None else None
    table_meta = _metadata_table(metadata)
    records: list[RunRecord] = []
    if isinstance(sources, pd.DataFrame):
        records.extend(read_table_frame(sources, "<DataFrame>", columns=columns))
    else:
        paths = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
        if not paths:
            raise InvalidParameterError("`sources` must name at least one file or folder; got [].")
        for path in paths:
            if isinstance(path, str) and path.startswith("mlflow:"):
                records.extend(read_mlflow(path))
            else:
                records.extend(read_path(Path(path), format=format, columns=columns))
    records = _merge_split_records(records)
    if not records:
        raise RunsFileError(
            f"{', '.join(map(str, sources)) if not isinstance(sources, pd.DataFrame) else 'DataFrame'}: "
            "no runs found (expected run folders, trainer_state.json, all_results.json, "
            "trainer_log.jsonl, event files or a table)."
        )
    return _assemble(
        records,
        pattern=folder_pattern,
        table_meta=table_meta,
        difficulty_values=difficulty_values,
        train_slices=train_slices,
        test_slice=test_slice,
    )


def _merge_split_records(records: list[RunRecord]) -> list[RunRecord]:
    """Merge W&B records of one run exported to several CSV files (one per metric panel)."""
    out: list[RunRecord] = []
    by_id: dict[str, RunRecord] = {}
    for rec in records:
        first = by_id.get(rec.run_id)
        if rec.source != "wandb" or first is None or first.source != "wandb":
            out.append(rec)
            by_id.setdefault(rec.run_id, rec)
            continue
        for key, value in rec.metrics.items():
            if key in first.metrics and not same_value(first.metrics[key], value):
                raise MetadataConflictError(
                    f"{rec.path}: metric `{key}` of run {rec.run_id!r} is {value!r} here but "
                    f"{first.metrics[key]!r} in {first.path}."
                )
            first.metrics[key] = value
        if rec.path not in first.path.split(" + "):
            first.path = f"{first.path} + {rec.path}"
    return out


def _metadata_table(metadata: Any) -> dict[str, dict[str, Any]]:
    if metadata is None:
        return {}
    if isinstance(metadata, pd.DataFrame):
        frame, name = metadata, "metadata table"
    else:
        frame, name = read_any_table(Path(metadata)), str(metadata)
    if "run_id" not in frame.columns:
        raise RunsFileError(f"{name}: field `run_id` is missing (columns: {list(frame.columns)}).")
    out: dict[str, dict[str, Any]] = {}
    for row in frame.to_dict("records"):
        key = str(row.pop("run_id"))
        if key in out:
            raise RunsFileError(f"{name}: run_id {key!r} appears twice.")
        out[key] = {k: v for k, v in row.items() if not is_missing(v)}
    return out


def _assemble(
    records: list[RunRecord],
    *,
    pattern: FolderPattern | None,
    table_meta: dict[str, dict[str, Any]],
    difficulty_values: Mapping[str, float] | None,
    train_slices: Sequence[str],
    test_slice: str,
) -> pd.DataFrame:
    rows = []
    seen: dict[str, str] = {}
    for rec in records:
        if pattern is not None:
            parsed = pattern.match(rec.names or [rec.run_id])
            if parsed is not None:
                rec.meta.append((f"folder pattern {pattern.pattern!r}", parsed))
        if rec.run_id in table_meta:
            rec.meta.append(("metadata table", table_meta[rec.run_id]))
        meta = merge_metadata(rec)
        for key, value in rec.fallback.items():
            if meta.get(key) is None and not is_missing(value):
                meta[key] = coerce_value(key, value, rec.path)
        if rec.run_id in seen:
            raise RunsFileError(
                f"{rec.path}: run_id {rec.run_id!r} is also the id of the run in {seen[rec.run_id]}; "
                "run ids must be unique."
            )
        seen[rec.run_id] = rec.path
        mapped = metrics_to_columns(rec.metrics, train_slices=train_slices, test_slice=test_slice)
        mapped.update(rec.values)
        values = {k: coerce_value(k, v, rec.path) for k, v in mapped.items()}
        row = {"run_id": rec.run_id, "source": rec.source, **meta, **values, "path": rec.path}
        _resolve_difficulty(row, difficulty_values)
        for required in ("difficulty", "n"):
            if row.get(required) is None:
                raise RunsFileError(
                    f"{rec.path}: field `{required}` of run {rec.run_id!r} is missing; give it in "
                    f"{SIDECAR}, a column, a run parameter (MLflow), a metadata table, or a "
                    "name pattern such as 'd={d}_n={n}_seed={seed}'."
                )
        if row["n"] < 1:
            raise RunsFileError(f"{rec.path}: field `n` must be an integer >= 1; got {row['n']}.")
        rows.append(row)
    frame = pd.DataFrame(rows)
    for col in RUN_COLUMNS:
        if col not in frame.columns:
            frame[col] = np.nan
    for col in RUN_COLUMNS:
        if col in TEXT_FIELDS:
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        elif col in INT_FIELDS:
            frame[col] = pd.array(frame[col], dtype="Int64")
        else:
            frame[col] = pd.to_numeric(frame[col], errors="raise").astype(float)
    extra = [c for c in frame.columns if c not in RUN_COLUMNS]
    slices = sorted(c for c in extra if c.startswith(("test_loss_", "test_acc_")))
    rest = [c for c in extra if c not in slices]
    frame = frame[[*RUN_COLUMNS, *slices, *rest]]
    return frame.sort_values(["n", "difficulty", "seed", "run_id"], kind="stable").reset_index(
        drop=True
    )


def _resolve_difficulty(row: dict[str, Any], values: Mapping[str, float] | None) -> None:
    label = row.get("difficulty_label")
    if values is not None and label is not None:
        if label not in values:
            raise RunsFileError(
                f"{row['path']}: difficulty label {label!r} of run {row['run_id']!r} is not in "
                f"`difficulty_values` (labels given: {sorted(values)})."
            )
        mapped = float(values[label])
        if row.get("difficulty") is not None and not same_value(row["difficulty"], mapped):
            raise MetadataConflictError(
                f"{row['path']}: field `difficulty` of run {row['run_id']!r} is "
                f"{row['difficulty']!r} but `difficulty_values` maps {label!r} to {mapped!r}."
            )
        row["difficulty"] = mapped
    if row.get("difficulty") is None and label is not None:
        num = to_float(label)
        if num is not None:
            row["difficulty"] = num
    if row.get("difficulty") is not None and row.get("difficulty_label") is None:
        row["difficulty_label"] = f"{row['difficulty']:g}"
