"""One reader and one writer for tables on disk; the file's suffix picks the format.

Formats (:data:`TABLE_SUFFIXES`, case-insensitive):

- ``.csv`` and ``.tsv``: comma- or tab-separated text with a header row. On writing, cells that
  hold lists, dicts or arrays are JSON-encoded, so that nothing is lost to ``str``.
- ``.jsonl``: JSON Lines, one object per row; floats are read and written exactly (shortest
  repr round trip), non-finite floats are written as ``null``.
- ``.json``: a list of row objects. Read also: ``{"data": [...]}`` or ``{"examples": [...]}``,
  pandas' column orientation ``{column: {row: value}}`` or ``{column: [values]}``, and JSON
  Lines saved with a ``.json`` suffix.
- ``.parquet`` and ``.pq``: Apache Parquet (pyarrow), without the index.

Writes are atomic (a temporary file beside the target, then :func:`os.replace`): an exception
or a kill leaves the previous file, never a partial one. pandas is imported on first use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacbound.exceptions import InputFileError, InvalidParameterError
from pacbound.support._io import atomic_path, read_jsonl_records, to_jsonable

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TABLE_SUFFIXES", "read_table", "table_format", "write_table"]

#: The suffixes :func:`read_table` and :func:`write_table` accept, in the order errors list them.
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".pq")

_FORMAT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def table_format(
    path: str | os.PathLike[str],
    *,
    error: type[Exception] = InvalidParameterError,
    what: str = "table",
) -> str:
    """The format of the table file ``path`` from its suffix: csv, tsv, jsonl, json or parquet.

    Raises ``error`` naming the path, its suffix and :data:`TABLE_SUFFIXES` when the suffix is
    not one of them.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMAT:
        got = f"suffix {suffix!r}" if suffix else "no suffix"
        raise error(
            f"{os.fspath(path)}: a {what} file must end in one of {', '.join(TABLE_SUFFIXES)}; "
            f"got {got}."
        )
    return _FORMAT[suffix]


def read_table(
    path: str | os.PathLike[str],
    *,
    text: bool = False,
    error: type[InputFileError] = InputFileError,
    what: str = "table",
) -> pd.DataFrame:
    """Read the table file ``path`` into a DataFrame (the format follows the suffix).

    Parameters
    ----------
    path : path
        A ``.csv``, ``.tsv``, ``.jsonl``, ``.json``, ``.parquet`` or ``.pq`` file.
    text : bool
        Keep CSV/TSV cells as the text they are (``dtype=object``, no ``NA``/number parsing),
        as datasets of prompts and answers need; the other formats carry their own types.
    error : subclass of InputFileError
        The exception raised for a missing, unknown or unreadable file (the caller's own,
        e.g. ``DatasetError`` or ``RunsFileError``).
    what : str
        What the file holds, for the messages ("table", "dataset", "test", ...).

    Raises
    ------
    error
        When the file does not exist, its suffix is not in :data:`TABLE_SUFFIXES` (the message
        names the path, the suffix and the allowed set), or it cannot be parsed as its format
        (the message names the path, the format and the parser's reason; a bad JSON Lines line
        is named by its number).
    """
    import pandas as pd

    path = Path(path)
    fmt = table_format(path, error=error, what=what)
    if path.is_dir():
        raise error(f"{path}: is a folder, not a {what} file.")
    if not path.is_file():
        raise error(f"{path}: the {what} file does not exist.")
    try:
        if fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else ","
            if text:
                return pd.read_csv(path, sep=sep, keep_default_na=False, dtype=object)
            return pd.read_csv(path, sep=sep)
        if fmt == "jsonl":
            return pd.DataFrame.from_records(read_jsonl_records(path, error=error))
        if fmt == "json":
            return _read_json(path, error, what)
        return pd.read_parquet(path)
    except InputFileError:
        raise
    except (ValueError, OSError) as exc:  # parser errors, bad bytes, pyarrow's ArrowInvalid
        raise error(f"{path}: not a readable {fmt.upper()} {what} file ({exc}).") from None
    except Exception as exc:
        if type(exc).__module__.startswith("pyarrow"):  # other errors of a corrupt Parquet file
            raise error(f"{path}: not a readable {fmt.upper()} {what} file ({exc}).") from None
        raise


def _read_json(path: Path, error: type[InputFileError], what: str) -> pd.DataFrame:
    import pandas as pd

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return pd.DataFrame.from_records(read_jsonl_records(path, error=error))  # JSON Lines
    if isinstance(data, dict):
        rows = data.get("data", data.get("examples"))
        if isinstance(rows, list):
            data = rows
        elif all(isinstance(v, (dict, list)) for v in data.values()):
            return pd.DataFrame(data).reset_index(drop=True)  # {column: {row: value}}
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise error(
            f"{path}: a .json {what} must be a list of objects, a {{column: values}} object or "
            f"JSON Lines; got {type(data).__name__}."
        )
    return pd.DataFrame.from_records(data)


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` to ``path`` atomically, in the format its suffix names; return the path.

    Rows are written without the index. CSV/TSV cells that hold lists, dicts or arrays are
    JSON-encoded; ``.jsonl`` writes one object per line and ``.json`` a list of objects, both
    with exact floats and ``null`` for NaN and infinities.

    Raises
    ------
    InvalidParameterError
        When the suffix is not in :data:`TABLE_SUFFIXES` (naming the path, the suffix and the
        allowed set); nothing is written then.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> from pacbound.support import read_table, write_table
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
    >>> read_table(write_table(pd.DataFrame({"x": [0.1, 2.5]}), out))["x"].tolist()
    [0.1, 2.5]
    """
    target = Path(path)
    fmt = table_format(target)
    with atomic_path(target, suffix=target.suffix) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt in ("csv", "tsv"):
            _json_encode_nested(frame).to_csv(tmp, index=False, sep="\t" if fmt == "tsv" else ",")
        else:
            records = [_json_row(r) for r in frame.to_dict(orient="records")]
            with open(tmp, "w", encoding="utf-8") as fh:
                if fmt == "jsonl":
                    fh.writelines(r + "\n" for r in records)
                else:
                    fh.write("[\n" + ",\n".join(records) + "\n]\n")
    return target


def _is_nested(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (list, tuple, dict, np.ndarray))


def _json_encode_nested(frame: pd.DataFrame) -> pd.DataFrame:
    nested = [
        c for c in frame.columns if frame[c].dtype == object and frame[c].map(_is_nested).any()
    ]
    if not nested:
        return frame
    flat = frame.copy()
    for col in nested:
        flat[col] = flat[col].map(
            lambda v: json.dumps(to_jsonable(v), ensure_ascii=False) if _is_nested(v) else v
        )
    return flat


def _json_row(record: dict[str, Any]) -> str:
    return json.dumps(to_jsonable(record), ensure_ascii=False, default=_json_scalar)


def _json_scalar(value: Any) -> Any:
    """JSON for the pandas scalars ``json`` does not know: missing values and timestamps."""
    import pandas as pd

    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)
