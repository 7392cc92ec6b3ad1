"""The weight-statistics table (one row per tensor pair) and the pass that fills it.

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

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from measurement._pairing import classify_module, layer_index
from pacbound.exceptions import InputFileError
from pacbound.support import OUTPUT_MARKER, atomic_dir, atomic_path, to_jsonable, write_json

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
#: version 2 writes a manifest, and its readers refuse the folder without one
_VERSION = 2
TABLE_FILE, ADAPTER_FILE, JSON_FILE, MANIFEST_FILE = (
    "weight_stats.parquet",
    "adapter_stats.parquet",
    "weight_stats.json",
    "weight_stats.manifest.json",
)
_OWN_FILES = (TABLE_FILE, ADAPTER_FILE, JSON_FILE, MANIFEST_FILE)
_OWN_HIDDEN = ".weight_stats"  # resume journals and temporary files of ours


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_manifest(folder: Path, version: int) -> None:
    """Refuse a statistics folder whose files were not written together.

    The manifest, written last, lists every file with its size and sha256: a file that
    differs (a write cut short, a file copied in) or a statistics file it does not list (a
    stale part of an earlier output) means the parts do not belong together.
    """
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        if version >= 2:
            raise InputFileError(
                f"`{folder}` holds weight statistics without their manifest `{MANIFEST_FILE}` "
                "(the write was interrupted, or files were copied by hand); its parts may not "
                "belong together. Rerun `tradeoff weights ... --out` on it."
            )
        return  # written before manifests existed
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        listed = {str(k): (int(v["bytes"]), str(v["sha256"])) for k, v in files.items()}
    except (
        OSError,
        UnicodeDecodeError,
        json.JSONDecodeError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
    ) as exc:
        raise InputFileError(
            f"`{manifest}` is not a valid manifest ({type(exc).__name__}: {exc}); rerun "
            "`tradeoff weights ... --out` on the folder."
        ) from None
    for name in _OWN_FILES:
        if name != MANIFEST_FILE and name not in listed and (folder / name).exists():
            raise InputFileError(
                f"`{folder / name}` is not part of the weight statistics that `{manifest}` "
                "lists (a stale file of an earlier output); remove it or rerun `tradeoff "
                "weights ... --out` on the folder."
            )
    for name, (size, digest) in listed.items():
        path = folder / Path(name).name
        if not path.is_file():
            if name == JSON_FILE:
                raise InputFileError(f"`{path}`, listed in `{manifest}`, is missing.")
            continue  # a table removed by hand: the checked JSON holds the same rows
        if path.stat().st_size != size or _sha256(path) != digest:
            raise InputFileError(
                f"`{path}` does not match its size and sha256 in `{manifest}`: the folder "
                "mixes files of two outputs (or one was cut short); rerun `tradeoff weights "
                "... --out` on it."
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
        """Write ``weight_stats.parquet`` (+ ``adapter_stats.parquet``), ``weight_stats.json``
        and, last, ``weight_stats.manifest.json`` (every file's size and sha256).

        A new folder, or one that holds only statistics files, is written as a unit: built in
        a temporary sibling and renamed over the old one. In a folder that holds other files
        too (a training run's output), the old manifest and statistics files are removed
        first, the new ones written one by one (each atomically) and the manifest last;
        :meth:`load` refuses the folder until the manifest is there and matches. Returns the
        folder.
        """
        folder = Path(directory)
        if folder.exists() and not folder.is_dir():
            raise InputFileError(
                f"`{folder}` must be a folder for the weight statistics; it is an existing file."
            )
        foreign = folder.is_dir() and any(
            p.name not in (*_OWN_FILES, OUTPUT_MARKER) and not p.name.startswith(_OWN_HIDDEN)
            for p in folder.iterdir()
        )
        if not foreign:
            with atomic_dir(folder) as tmp:
                self._write_files(tmp)
            return folder
        for name in (MANIFEST_FILE, JSON_FILE, ADAPTER_FILE, TABLE_FILE):
            (folder / name).unlink(missing_ok=True)
        self._write_files(folder)
        return folder

    def _write_files(self, folder: Path) -> None:
        written = [TABLE_FILE, JSON_FILE]
        with atomic_path(folder / TABLE_FILE) as tmp:
            self.table.to_parquet(tmp, index=False)
        if self.adapter_table is not None:
            with atomic_path(folder / ADAPTER_FILE) as tmp:
                self.adapter_table.to_parquet(tmp, index=False)
            written.append(ADAPTER_FILE)
        write_json(folder / JSON_FILE, self._json())
        files = {
            name: {"bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
            for name in written
        }
        write_json(folder / MANIFEST_FILE, {"format": _FORMAT, "files": files})

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

        The folder's files are first checked against the manifest (sizes and sha256).

        Raises
        ------
        InputFileError
            Missing or invalid files, missing columns (the file and column are named), or
            files that do not belong together (no manifest, a hash that differs, a stale
            statistics file the manifest does not list).
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
        version = data.get("version", 1)
        _check_manifest(folder, version if isinstance(version, int) else 1)

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
        if main.empty:
            raise InputFileError(
                f"`{folder}` holds weight statistics over 0 tensors (nothing paired); a KL "
                "over them would be 0. Measure them again with `tradeoff weights`."
            )
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
        cov = m.get("coverage")
        if isinstance(cov, dict) and (cov.get("share", 1) < 1 or cov.get("skipped_tensors")):
            lines.append(f"  coverage: {cov.get('line')}")
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
