"""Readers for tables of runs: plain CSV/TSV/JSONL/JSON/Parquet, and W&B CSV exports.

Plain tables in the canonical column names (``run_id``, ``difficulty``, ``n``, ``seed``,
``train_loss``, ``test_loss``, and optionally ``kl``, ``sq_dist``, ``test_acc``, ...) load with no
options; other names through ``columns={canonical: actual}``.

W&B UI exports have a ``Step`` column and one column per run and metric, named
``"<run name> - <metric>"``, with ``__MIN``/``__MAX`` companions (the envelope of grouped or
smoothed lines, ignored here). The final value of each metric is the last non-empty row. Exports
can be sampled or truncated (W&B documents "why are steps missing from a CSV"); when the rows look
sampled, a :class:`~fits.exceptions.TruncatedExportWarning` names the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from fits.exceptions import RunsFileError, TruncatedExportWarning
from fits.runs._record import METADATA_FIELDS, RunRecord
from pacbound.support import read_jsonl_records

__all__ = [
    "read_any_table",
    "read_table_file",
    "read_table_frame",
    "read_wandb_csv",
    "sniff_wandb_csv",
]

_SAMPLING_CAPS = (500, 1000, 10000)


def read_any_table(path: Path) -> pd.DataFrame:
    """Read a CSV/TSV/JSONL/JSON/Parquet table; unreadable files raise naming the file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise RunsFileError(f"{path}: no such file.")
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".tsv":
            return pd.read_csv(path, sep="\t")
        if suffix == ".jsonl":
            return _read_jsonl(path)
        if suffix == ".json":
            return pd.read_json(path, precise_float=True)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise RunsFileError(f"{path}: not a readable {suffix[1:].upper()} table ({exc}).") from None
    except Exception as exc:  # pyarrow's errors for corrupt Parquet files
        raise RunsFileError(f"{path}: not a readable {suffix[1:].upper()} table ({exc}).") from None
    raise RunsFileError(
        f"{path}: unknown table format {suffix!r} (csv, tsv, jsonl, json, parquet)."
    )


def _read_jsonl(path: Path) -> pd.DataFrame:
    """JSON lines with exact floats; a bad line raises naming its number."""
    return pd.DataFrame(read_jsonl_records(path, error=RunsFileError))


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


def sniff_wandb_csv(path: Path) -> bool:
    """True when the CSV header looks like a W&B export (``Step`` and ``"<run> - <metric>"``)."""
    try:
        with path.open(encoding="utf-8") as fh:
            header = fh.readline()
    except (OSError, UnicodeDecodeError):
        return False
    cols = [c.strip().strip('"') for c in header.rstrip("\n").split(",")]
    return "Step" in cols and any(" - " in c for c in cols)


def read_wandb_csv(path: Path) -> list[RunRecord]:
    """Read a W&B CSV export: the last logged value of every ``<run> - <metric>`` column."""
    frame = read_any_table(path)
    if "Step" not in frame.columns:
        raise RunsFileError(f"{path}: field `Step` is missing; not a W&B CSV export.")
    steps = pd.to_numeric(frame["Step"], errors="coerce")
    if steps.isna().any():
        bad = int(np.flatnonzero(steps.isna().to_numpy())[0])
        raise RunsFileError(f"{path}: row {bad + 1}, field `Step` is not a number.")
    records: dict[str, RunRecord] = {}
    grouped = False
    for col in frame.columns:
        if col == "Step" or col.endswith(("__MIN", "__MAX")):
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
