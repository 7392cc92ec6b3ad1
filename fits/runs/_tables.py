"""Readers for tables of runs: plain CSV/TSV/JSONL/JSON/Parquet, and W&B CSV exports.

Plain tables in the canonical column names (``run_id``, ``difficulty``, ``n``, ``seed``,
``train_loss``, ``test_loss``, and optionally ``kl``, ``sq_dist``, ``test_acc``, ...) load with no
options; other names through ``columns={canonical: actual}``.

W&B UI chart exports have an x-axis column (``Step``, or e.g. ``train/global_step``) and one
column per run and metric, named ``"<run name> - <metric>"``, with ``__MIN``/``__MAX``
companions (the envelope of grouped or smoothed lines, ignored here). The final value of each
metric is the last non-empty row. Exports can be sampled or truncated (W&B documents "why are
steps missing from a CSV"); when the rows look sampled, a
:class:`~fits.exceptions.TruncatedExportWarning` names the file. The runs-table export (``Name``,
``State``, ``Notes``, ``User``, ``Tags``, ``Created``, ``Runtime``, ``Sweep``, then config and
summary columns) gives one run per row.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from fits.exceptions import RunsFileError, TruncatedExportWarning
from fits.runs._record import METADATA_FIELDS, RunRecord
from pacbound.support import read_table

__all__ = [
    "read_any_table",
    "read_table_file",
    "read_table_frame",
    "read_wandb_csv",
    "read_wandb_runs_table",
    "sniff_wandb_csv",
]

_SAMPLING_CAPS = (500, 1000, 10000)


def read_any_table(path: Path) -> pd.DataFrame:
    """Read a table of runs (:func:`pacbound.support.read_table`); errors are RunsFileError."""
    return read_table(path, error=RunsFileError)


def read_table_file(path: Path, *, columns: Mapping[str, str] | None = None) -> list[RunRecord]:
    """Read a table file of runs (one row per run) into records."""
    return read_table_frame(read_any_table(path), str(path), columns=columns)


def read_table_frame(
    frame: pd.DataFrame, name: str, *, columns: Mapping[str, str] | None = None
) -> list[RunRecord]:
    """Turn a DataFrame of runs into records; ``name`` is used in error messages."""
    frame = frame.copy()
    if columns:
        missing = [actual for actual in columns.values() if actual not in frame.columns]
        if missing:
            raise RunsFileError(
                f"{name}: `columns` names {missing} but the table has no such column "
                f"(columns: {list(frame.columns)})."
            )
        frame = frame.rename(columns={actual: canon for canon, actual in columns.items()})
    if frame.columns.duplicated().any():
        dup = list(frame.columns[frame.columns.duplicated()])
        raise RunsFileError(f"{name}: duplicate columns {dup} after applying `columns`.")
    has_difficulty = "difficulty" in frame.columns or "difficulty_label" in frame.columns
    for field in ("n",) if has_difficulty else ("difficulty", "n"):
        if field not in frame.columns:
            raise RunsFileError(
                f"{name}: field `{field}` is missing (columns: {list(frame.columns)}); map it "
                "with `columns`, e.g. {'" + field + "': 'your_column'}."
            )
    stem = Path(name).stem
    records = []
    for i, row in enumerate(frame.to_dict("records")):
        run_id = row.pop("run_id", None)
        if run_id is None or (isinstance(run_id, float) and np.isnan(run_id)):
            run_id = f"{stem}:{i}"
        source = row.pop("source", None)
        row.pop("path", None)
        rec = RunRecord(
            run_id=str(run_id),
            source=str(source) if isinstance(source, str) and source else "table",
            path=f"{name} (row {i + 1})",
        )
        rec.names = [str(run_id)]
        meta = {k: row.pop(k) for k in list(row) if k in METADATA_FIELDS}
        rec.meta.append((f"columns of {name}", meta))
        rec.values.update(row)
        records.append(rec)
    return records


_WANDB_RUNS_COLUMNS = ("Name", "State", "Notes", "User", "Tags", "Created", "Runtime", "Sweep")
_WANDB_FINISHED = "finished"


def _split_header(line: str) -> list[str]:
    import csv

    return [c.strip() for c in next(csv.reader([line]))] if line.strip() else []


def sniff_wandb_csv(path: Path) -> str | None:
    """Which W&B CSV export ``path`` is: ``"chart"`` (an x-axis column such as ``Step`` or
    ``train/global_step``, then ``"<run> - <metric>"`` columns), ``"runs"`` (the runs-table
    export: ``Name``, ``State``, ..., config and summary columns), or None."""
    try:
        with path.open(encoding="utf-8") as fh:
            header = fh.readline()
    except (OSError, UnicodeDecodeError):
        return None
    cols = _split_header(header)
    if len(cols) < 2:
        return None
    if {"Name", "State"} <= set(cols) and {"Created", "Runtime"} & set(cols):
        return "runs"
    series = [c for c in cols[1:] if not c.endswith(("__MIN", "__MAX"))]
    if " - " not in cols[0] and series and all(" - " in c for c in series):
        return "chart"
    return None


def read_wandb_runs_table(path: Path) -> list[RunRecord]:
    """Read a W&B runs-table export: one run per row, named by ``Name``.

    Canonical metadata columns (``difficulty``, ``n``, ``seed``, ``lr``, ...) among the config
    columns are metadata (``learning_rate`` is the ``lr`` fallback); the other numeric columns
    are the run's summary metrics (``eval/test_loss``, ``train/loss``, ...), mapped like logged
    keys. A run whose ``State`` is not ``finished`` (crashed, failed, running, killed) gets a
    warning: its summary is that of its last logged step.
    """
    frame = read_any_table(path)
    if "Name" not in frame.columns:
        raise RunsFileError(f"{path}: field `Name` is missing; not a W&B runs-table export.")
    records = []
    unfinished = []
    for i, row in enumerate(frame.to_dict("records")):
        name = row.get("Name")
        if name is None or (isinstance(name, float) and np.isnan(name)):
            raise RunsFileError(f"{path}: row {i + 1}, field `Name` is empty.")
        rec = RunRecord(
            run_id=str(name), source="wandb", path=f"{path} (row {i + 1})", names=[str(name)]
        )
        state = row.get("State")
        if isinstance(state, str) and state != _WANDB_FINISHED:
            unfinished.append(f"{name!s} ({state})")
        meta = {}
        for key, value in row.items():
            if key in _WANDB_RUNS_COLUMNS or value is None:
                continue
            if isinstance(value, float) and np.isnan(value):
                continue
            if key in METADATA_FIELDS:
                meta[key] = value
            elif key == "learning_rate":
                rec.fallback["lr"] = value
                rec.fallback_source["lr"] = "learning_rate (W&B config)"
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                rec.metrics[key] = value
        rec.meta.append((f"columns of {path}", meta))
        records.append(rec)
    if unfinished:
        warnings.warn(
            f"{path}: {len(unfinished)} run(s) not finished, their summaries are those of the "
            f"last logged step: {', '.join(unfinished[:5])}{' ...' if len(unfinished) > 5 else ''}.",
            UserWarning,
            stacklevel=3,
        )
    return records


def read_wandb_csv(path: Path) -> list[RunRecord]:
    """Read a W&B CSV export: the last logged value of every ``<run> - <metric>`` column.

    The first column is the x-axis chosen in the W&B UI (``Step``, or e.g.
    ``train/global_step``, the Hugging Face ``WandbCallback`` default); a runs-table export is
    read by :func:`read_wandb_runs_table`.
    """
    if sniff_wandb_csv(path) == "runs":
        return read_wandb_runs_table(path)
    frame = read_any_table(path)
    if len(frame.columns) == 0 or " - " in str(frame.columns[0]):
        raise RunsFileError(
            f"{path}: the first column must be the x-axis (`Step`, `train/global_step`, ...); "
            "not a W&B CSV export."
        )
    x_axis = str(frame.columns[0])
    steps = pd.to_numeric(frame[x_axis], errors="coerce")
    if steps.isna().any():
        bad = int(np.flatnonzero(steps.isna().to_numpy())[0])
        raise RunsFileError(f"{path}: row {bad + 1}, field `{x_axis}` is not a number.")
    records: dict[str, RunRecord] = {}
    grouped = False
    for col in frame.columns:
        if col == x_axis or col.endswith(("__MIN", "__MAX")):
            continue
        if " - " not in col:
            raise RunsFileError(
                f"{path}: column {col!r} is not of the form '<run name> - <metric>'."
            )
        run, metric = col.rsplit(" - ", 1)
        run, metric = run.strip(), metric.strip()
        grouped |= run.startswith("Group:")
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise RunsFileError(f"{path}: row {row + 1}, column {col!r} is not a number.")
        valid = values.notna().to_numpy()
        if not valid.any():
            continue
        rec = records.setdefault(
            run, RunRecord(run_id=run, source="wandb", path=str(path), names=[run])
        )
        rec.metrics[metric] = float(values.to_numpy()[np.flatnonzero(valid)[-1]])
    if not records:
        raise RunsFileError(f"{path}: no '<run> - <metric>' column holds a value.")
    gaps = np.diff(steps.to_numpy())
    sampled = len(np.unique(gaps[:-1])) > 1 if len(gaps) > 2 else False
    if len(frame) in _SAMPLING_CAPS or sampled:
        why = (
            f"it has exactly {len(frame)} rows"
            if len(frame) in _SAMPLING_CAPS
            else ("its steps are unevenly spaced")
        )
        warnings.warn(
            f"{path}: this W&B export looks sampled or truncated ({why}); the last row may not "
            "hold the final value. Export the full history (run.scan_history) when it matters.",
            TruncatedExportWarning,
            stacklevel=3,
        )
    if grouped:
        warnings.warn(
            f"{path}: grouped columns ('Group: ...') hold means over runs; their seeds are lost.",
            UserWarning,
            stacklevel=3,
        )
    return list(records.values())
