"""The weight-statistics table (DESIGN.md section 2) and the pass that fills it.

One row per tensor pair::

    name, layer, module (attention|mlp|embedding|lm_head|norm|other),
    kind (full|lora|dora|modules_to_save|new_rows|frozen), numel, sq_delta, sq_base,
    sq_finetuned, max_abs_delta, n_zero_delta, dtype_base, dtype_finetuned

with sq_delta = Σ(w_ft − w_base)², sq_base = Σw_base², sq_finetuned = Σw_ft². Every Gaussian
KL, for any σ, is a closed form over this table (see :func:`measurement.gaussian_kl`), so the
checkpoints are read once. For an adapter a second table holds the adapter-space family (one
row per adapter parameter tensor against its data-free initial value); the two are never
mixed. ``NaN``/``<NA>`` mark sums that were not read (LoRA rows computed from the factors
alone; frozen rows).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from measurement._pairing import classify_module, layer_index
from pacbound.exceptions import InputFileError
from pacbound.support import atomic_path, to_jsonable, write_json

if TYPE_CHECKING:
    import pandas as pd

    from measurement._stream import JobStats

__all__ = ["TABLE_COLUMNS", "WeightStats", "make_table"]

TABLE_COLUMNS = (
    "name", "layer", "module", "kind", "numel", "sq_delta", "sq_base", "sq_finetuned",
    "max_abs_delta", "n_zero_delta", "dtype_base", "dtype_finetuned",
)  # fmt: skip
_FLOAT_COLUMNS = ("sq_delta", "sq_base", "sq_finetuned", "max_abs_delta")
_FORMAT = "sft-tradeoff weight statistics"
_VERSION = 1
TABLE_FILE, ADAPTER_FILE, JSON_FILE = (
    "weight_stats.parquet",
    "adapter_stats.parquet",
    "weight_stats.json",
)


def make_table(stats: list[JobStats]) -> pd.DataFrame:
    """Rows of :class:`~measurement._stream.JobStats` -> the typed statistics table."""
    import pandas as pd

    records = [
        {
            "name": s.name,
            "layer": layer_index(s.name),
            "module": classify_module(s.name),
            "kind": s.kind,
            "numel": int(s.numel),
            "sq_delta": float(s.sq_delta),
            "sq_base": float(s.sq_base),
            "sq_finetuned": float(s.sq_finetuned),
            "max_abs_delta": float(s.max_abs_delta),
            "n_zero_delta": None if s.n_zero_delta < 0 else int(s.n_zero_delta),
            "dtype_base": s.meta.get("dtype_base"),
            "dtype_finetuned": s.meta.get("dtype_finetuned"),
        }
        for s in stats
    ]
    return _typed(pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS)))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype(
        {
            "name": "string",
            "layer": "Int64",
            "module": "string",
            "kind": "string",
            "numel": "int64",
            **{c: "float64" for c in _FLOAT_COLUMNS},
            "n_zero_delta": "Int64",
            "dtype_base": "string",
            "dtype_finetuned": "string",
        }
    )
    return df.reset_index(drop=True)


@dataclass(frozen=True)
class WeightStats:
    """Per-tensor sufficient statistics of (fine-tune − base), and how they were measured.

    Attributes
    ----------
    table : pandas.DataFrame
        Weight-space rows, columns :data:`TABLE_COLUMNS` (one per tensor pair).
    adapter_table : pandas.DataFrame or None
        Adapter-space rows (same columns; ``sq_base`` is the squared norm of the prior
        centre θ₀), only for adapters.
    meta : dict
        Inputs, pairing notes, skipped/unpaired tensors, adapter config, device, bytes read,
        seconds, GB/s and library versions.
    """

    table: pd.DataFrame
    adapter_table: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sq_dist(self) -> float:
        """Σ sq_delta over the weight-space table: ‖w_ft − w_base‖² (new rows against 0)."""
        return float(self.table["sq_delta"].sum())

    @property
    def numel(self) -> int:
        """Number of weights covered by the weight-space table."""
        return int(self.table["numel"].sum())

    def by_module(self, space: str = "weight") -> dict[str, float]:
        """Σ sq_delta per module kind."""
        table = self.table if space == "weight" else self.adapter_table
        if table is None:
            return {}
        return {str(k): float(v) for k, v in table.groupby("module")["sq_delta"].sum().items()}

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``weight_stats.parquet`` (+ ``adapter_stats.parquet``) and ``weight_stats.json``.

        Each file is written atomically; the JSON (which alone suffices to reload) comes last.
        Returns the folder.
        """
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / TABLE_FILE) as tmp:
            self.table.to_parquet(tmp, index=False)
        if self.adapter_table is not None:
            with atomic_path(folder / ADAPTER_FILE) as tmp:
                self.adapter_table.to_parquet(tmp, index=False)
        write_json(folder / JSON_FILE, self._json())
        return folder

    def _json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "summary": {
                "sq_dist": self.sq_dist,
                "numel": self.numel,
                "n_tensors": len(self.table),
                "adapter_sq_dist": None
                if self.adapter_table is None
                else float(self.adapter_table["sq_delta"].sum()),
            },
            "meta": self.meta,
            "columns": list(TABLE_COLUMNS),
            "rows": _records(self.table),
            "adapter_rows": None if self.adapter_table is None else _records(self.adapter_table),
        }

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> WeightStats:
        """Read what :meth:`save` wrote (Parquet tables when present, else the JSON rows).

        Raises
        ------
        InputFileError
            Missing or invalid files, or missing columns (the file and column are named).
        """
        import pandas as pd

        folder = Path(directory)
        path = folder / JSON_FILE
        if not path.is_file():
            raise InputFileError(
                f"`{folder}` holds no weight statistics: `{path.name}` is missing (write them "
                "with `tradeoff weights BASE FINETUNED --out DIR`)."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(f"`{path}` is not valid JSON ({exc}).") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise InputFileError(
                f"`{path}` must be a weight-statistics file (format {_FORMAT!r}); got "
                f"{data.get('format') if isinstance(data, dict) else type(data).__name__!r}."
            )

        def table(parquet: Path, rows: Any) -> pd.DataFrame | None:
            if parquet.is_file():
                df = pd.read_parquet(parquet)
                source = parquet
            elif rows is not None:
                df = pd.DataFrame.from_records(rows)
                source = path
            else:
                return None
            missing = [c for c in TABLE_COLUMNS if c not in df.columns]
            if missing:
                raise InputFileError(
                    f"`{source}` must have columns {', '.join(TABLE_COLUMNS)}; missing "
                    f"{', '.join(missing)}."
                )
            df = df[list(TABLE_COLUMNS)].copy()
            for c in _FLOAT_COLUMNS:
                df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
            return _typed(df)

        main = table(folder / TABLE_FILE, data.get("rows"))
        if main is None:
            raise InputFileError(f"`{path}` holds no rows and `{TABLE_FILE}` is missing.")
        adapter = table(folder / ADAPTER_FILE, data.get("adapter_rows"))
        return cls(main, adapter, dict(data.get("meta") or {}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: totals, per-module sums, the metadata and every row."""
        return to_jsonable(
            {
                "sq_dist": self.sq_dist,
                "numel": self.numel,
                "n_tensors": len(self.table),
                "by_module": self.by_module(),
                "by_kind": {
                    str(k): float(v)
                    for k, v in self.table.groupby("kind")["sq_delta"].sum().items()
                },
                "adapter_space": None
                if self.adapter_table is None
                else {
                    "sq_dist": float(self.adapter_table["sq_delta"].sum()),
                    "numel": int(self.adapter_table["numel"].sum()),
                    "by_module": self.by_module("adapter"),
                },
                "meta": self.meta,
                "rows": _records(self.table),
            }
        )

    def __str__(self) -> str:
        m = self.meta
        t = self.table
        sq_base = float(t["sq_base"].sum(skipna=True))
        rel = (
            math.sqrt(self.sq_dist / sq_base)
            if sq_base > 0 and t["sq_base"].notna().all()
            else None
        )
        lines = [
            f"WeightStats: {len(t)} tensors, {self.numel:,} weights "
            f"({'adapter ' + str(m.get('adapter')) if m.get('adapter') else 'full fine-tune'})",
            f"  base:      {m.get('base')}",
            f"  fine-tune: {m.get('finetuned') or m.get('adapter')}",
            f"  weight space: ||w_ft - w_base||^2 = {self.sq_dist:.6g}"
            + (f", relative ||Δ||/||w_base|| = {rel:.3g}" if rel is not None else "")
            + f", max |Δ| = {float(t['max_abs_delta'].max(skipna=True)):.3g}",
            "  by module: "
            + ", ".join(f"{k} {v:.4g}" for k, v in sorted(self.by_module().items())),
        ]
        if self.adapter_table is not None:
            a = self.adapter_table
            lines.append(
                f"  adapter space: {int(a['numel'].sum()):,} parameters, ||θ - θ0||^2 = "
                f"{float(a['sq_delta'].sum()):.6g}"
            )
        if m.get("bytes_read") is not None:
            lines.append(
                f"  read {m['bytes_read'] / 1e6:.1f} MB in {m.get('seconds', 0):.2f} s "
                f"({m.get('gb_per_s') or float('nan'):.3g} GB/s) on {m.get('device')}"
            )
        return "\n".join(lines)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.astype(object).where(df.notna(), None).to_dict(orient="records"):
        out.append(to_jsonable(rec))
    return out


def versions() -> dict[str, str]:
    """Library versions recorded with the statistics."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("sft-tradeoff", "torch", "safetensors", "peft", "transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    out["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return out
