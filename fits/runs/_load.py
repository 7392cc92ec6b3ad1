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

The training loss (``train_metric``). The canonical ``train_loss`` is best an evaluation of the
final model on (a subset of) its own training data, ``eval_<train>_loss``: eval mode (no dropout),
one fixed model, the same loss as the test metric. Real trainer logs usually have only

- ``train_loss_logged``: the logged training ``loss`` entries, smoothed over the last logging
  window (the mean of the entries in the last 10% of steps, at least the last 3 entries). Each
  entry is the mean minibatch loss since the previous log, in train mode (dropout active) on a
  model that moved during the window; both push it *above* the final model's training loss (by
  the loss decrease over about half the window, plus the dropout penalty), so the gap
  ``test - train`` comes out too small, more so where training is still descending (large or
  hard data sets). It is the fallback when no eval on training data exists (``"auto"``), with a
  warning naming it;
- ``train_loss_avg``: the run-average ``train_loss`` of Hugging Face's final summary entry,
  the mean over all of training: biased far above the final loss, used only when chosen
  (``train_metric="average"``).

Each row's ``train_loss_source`` says which one it holds (``eval_train_loss``,
``train_loss_logged``, ``train_loss_avg`` or the table column ``train_loss``).
"""

from __future__ import annotations

import os
import warnings
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
    LOGGED_WINDOW_FRACTION,
    LOGGED_WINDOW_MIN,
    RUN_COLUMNS,
    SIDECAR,
    TEST_SLICE,
    TRAIN_METRICS,
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
    train_metric: str = "auto",
    exclude: Sequence[str] = (),
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
        Canonical name -> the table's column name, e.g. ``{"test_loss": "val"}``; for run
        folders and logs, canonical name -> a raw metric key, e.g.
        ``{"test_loss": "eval_g0_loss"}``. A name found in no run is an error.
    pattern : str, optional
        Folder/run-name pattern for metadata, e.g. ``"d={d}_n={n}_seed={seed}"``.
    metadata : path or DataFrame, optional
        A table with a ``run_id`` column and metadata columns (``difficulty``, ``n``, ...).
    difficulty_values : mapping, optional
        Numeric difficulty for each difficulty label (e.g. ``{"easy": 1, "hard": 3}``).
    train_slices, test_slice : str
        Eval-set names whose ``eval_<name>_loss`` is the training loss (the final model on its own
        training subset) and the test loss.
    train_metric : {"auto", "eval", "logged", "average"}, default "auto"
        Where ``train_loss`` comes from: ``eval`` only from ``eval_<train>_loss`` (or a table's
        ``train_loss`` column); ``logged`` the smoothed logged training loss
        ``train_loss_logged`` (the mean of the logged ``loss`` entries over the last 10% of
        steps, at least the last 3); ``average`` the run-average ``train_loss_avg``; ``auto``
        the eval when the run has one, else ``train_loss_logged``, with one warning naming the
        source. The logged and average losses are biased upward (module docstring); the column
        replaced keeps its value as ``train_loss_eval``.
    exclude : sequence of str
        Run ids the fit will leave out: they are not checked for metadata (a stray run without
        ``difficulty`` or ``n`` does not stop the load) and stay in the table for the fit's
        ``exclude`` to record.

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
    check_choice(train_metric, "train_metric", TRAIN_METRICS)
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
        train_metric=train_metric,
        columns=columns,
        exclude={str(x) for x in exclude},
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
    train_metric: str = "auto",
    columns: Mapping[str, str] | None = None,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> pd.DataFrame:
    rows = []
    fallback_runs: list[str] = []
    found_columns: set[str] = set()
    log_records = [r for r in records if r.source != "table"]
    seen: dict[str, str] = {}
    for rec in records:
        if pattern is not None:
            parsed = pattern.match(rec.names or [rec.run_id])
            if parsed is not None:
                rec.meta.append((f"folder pattern {pattern.pattern!r}", parsed))
        if rec.run_id in table_meta:
            rec.meta.append(("metadata table", table_meta[rec.run_id]))
        meta = merge_metadata(rec)
        used = []
        for key, value in rec.fallback.items():
            if meta.get(key) is None and not is_missing(value):
                meta[key] = coerce_value(key, value, rec.path)
                if key in rec.fallback_source:
                    used.append(f"{key}: {rec.fallback_source[key]}")
        if used:
            meta["metadata_from"] = "; ".join(used)
        if rec.run_id in seen:
            raise RunsFileError(
                f"{rec.path}: run_id {rec.run_id!r} is also the id of the run in {seen[rec.run_id]}; "
                "run ids must be unique."
            )
        seen[rec.run_id] = rec.path
        mapped = metrics_to_columns(rec.metrics, train_slices=train_slices, test_slice=test_slice)
        mapped.update(rec.values)
        if columns and rec.source != "table":
            for canonical, actual in columns.items():
                if actual in rec.metrics:
                    mapped[canonical] = rec.metrics[actual]
                    found_columns.add(canonical)
        if _choose_train_loss(mapped, train_metric, rec) and rec.run_id not in exclude:
            fallback_runs.append(rec.run_id)
        values = {k: coerce_value(k, v, rec.path) for k, v in mapped.items()}
        row = {"run_id": rec.run_id, "source": rec.source, **meta, **values, "path": rec.path}
        _resolve_difficulty(row, difficulty_values)
        for required in ("difficulty", "n"):
            if row.get(required) is None and rec.run_id not in exclude:
                raise RunsFileError(
                    f"{rec.path}: field `{required}` of run {rec.run_id!r} is missing; give it in "
                    f"{SIDECAR}, a column, a run parameter (MLflow), a metadata table, or a "
                    "name pattern such as 'd={d}_n={n}_seed={seed}'."
                )
        if row.get("n") is not None and row["n"] < 1:
            raise RunsFileError(f"{rec.path}: field `n` must be an integer >= 1; got {row['n']}.")
        rows.append(row)
    if columns and log_records:
        unused = [f"{k}={v}" for k, v in columns.items() if k not in found_columns]
        if unused:
            keys = sorted({str(k) for r in log_records for k in r.metrics})
            raise RunsFileError(
                f"{log_records[0].path}: `columns` {', '.join(unused)} name metric keys found in "
                f"no run; allowed keys: {', '.join(keys[:40])}{' ...' if len(keys) > 40 else ''}."
            )
    if fallback_runs:
        _warn_fallback(fallback_runs, len(rows))
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


_WINDOW = (
    f"the mean of the logged `loss` over the last {LOGGED_WINDOW_FRACTION:.0%} of steps, "
    f"at least the last {LOGGED_WINDOW_MIN} entries"
)


def _choose_train_loss(mapped: dict[str, Any], train_metric: str, rec: RunRecord) -> bool:
    """Set ``train_loss`` and ``train_loss_source`` per ``train_metric``; True on a fallback."""
    has_eval = not is_missing(mapped.get("train_loss"))
    if has_eval:
        mapped.setdefault("train_loss_source", "train_loss")
    if train_metric == "eval" or (train_metric == "auto" and has_eval):
        return False
    col = "train_loss_avg" if train_metric == "average" else "train_loss_logged"
    value = mapped.get(col)
    if is_missing(value):
        if train_metric == "auto":
            return False
        what = "run-average `train_loss`" if col == "train_loss_avg" else "logged training `loss`"
        raise RunsFileError(
            f"{rec.path}: run {rec.run_id!r} has no {what} (`{col}`) for train_metric="
            f"{train_metric!r}; allowed: {', '.join(TRAIN_METRICS)}."
        )
    if has_eval:
        mapped["train_loss_eval"] = mapped["train_loss"]
    mapped["train_loss"] = value
    mapped["train_loss_source"] = col
    return train_metric == "auto"


def _warn_fallback(run_ids: list[str], total: int) -> None:
    warnings.warn(
        f"train_loss: {len(run_ids)} of {total} runs have no evaluation on training data "
        f"(eval_<train>_loss; e.g. {run_ids[0]!r}), so their train_loss is `train_loss_logged`, "
        f"{_WINDOW} (train mode, moving model: biased upward); choose with "
        "train_metric / --train-metric eval|logged|average.",
        UserWarning,
        stacklevel=3,
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
