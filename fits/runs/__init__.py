"""Logged runs in: one loader per source family, one dispatcher, one canonical table.

- ``_record``: :class:`RunRecord` (a run as a reader found it) and the canonical columns.
- ``_metadata``: folder-name patterns, value coercion, merging metadata sources.
- ``_hf``: Hugging Face Trainer / TRL output folders, sweep folders, LlamaFactory logs.
- ``_tables``: CSV/TSV/JSONL/JSON/Parquet tables and W&B CSV exports.
- ``_events``: TensorBoard event files and MLflow tracking stores.
- ``_load``: :func:`load_runs`, which dispatches to the readers and merges metadata.
"""

from __future__ import annotations

from pacbound.support import lazy_exports

EXPORTS: dict[str, str] = {
    "load_runs": "fits.runs._load",
    "FORMATS": "fits.runs._load",
    "RUN_COLUMNS": "fits.runs._record",
    "RunRecord": "fits.runs._record",
    "metrics_to_columns": "fits.runs._record",
    "FolderPattern": "fits.runs._metadata",
    "read_any_table": "fits.runs._tables",
}
"""Public name -> the module that defines it (loaded on first use)."""

__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
