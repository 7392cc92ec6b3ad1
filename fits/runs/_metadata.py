"""Run metadata: folder-name patterns, value coercion, and merging sources without conflicts.

A run's metadata (difficulty, budget n, seed, base model, ...) may come from several places: the
sweep sidecar ``run_meta.json``, table columns, a metadata table, a folder-name pattern. They are
merged field by field; two sources that disagree raise
:class:`~fits.exceptions.MetadataConflictError` naming the file, the field and both values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, ClassVar

from fits.exceptions import MetadataConflictError, RunsFileError
from fits.runs._record import RunRecord
from pacbound.exceptions import InvalidParameterError

__all__ = [
    "FolderPattern",
    "coerce_value",
    "is_missing",
    "merge_metadata",
    "same_value",
    "to_float",
]

FLOAT_FIELDS = {"difficulty", "lr", "epochs", "kl", "sq_dist"}
INT_FIELDS = {"n", "n_tokens", "seed", "steps"}
TEXT_FIELDS = {
    "difficulty_label",
    "base_model",
    "budget_mode",
    "run_id",
    "source",
    "train_loss_source",
}
_NOT_FLOAT = INT_FIELDS | TEXT_FIELDS


class FolderPattern:
    """A folder-name pattern such as ``d={d}_n={n}_seed={seed}``.

    Placeholders name runs-table fields; ``d`` is short for ``difficulty`` and ``label`` for
    ``difficulty_label``. A ``d`` value that is not a number becomes the difficulty label. The
    pattern must match a whole path component (or run name); the innermost match wins. A
    pattern with ``/`` spans that many trailing path components, e.g. ``d={d}/n={n}/seed={seed}``
    for ``outputs/d=1/n=2000/seed=0/``.
    """

    _ALIASES: ClassVar[dict[str, str]] = {
        "d": "difficulty",
        "label": "difficulty_label",
        "model": "base_model",
    }

    def __init__(self, pattern: str):
        if not isinstance(pattern, str) or "{" not in pattern:
            raise InvalidParameterError(
                "`pattern` must contain placeholders such as 'd={d}_n={n}_seed={seed}'; "
                f"got {pattern!r}."
            )
        self.pattern = pattern
        parts = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", pattern)
        regex, self.fields = "", []
        for i, part in enumerate(parts):
            if i % 2 == 0:
                regex += re.escape(part)
            else:
                if part in self.fields:
                    raise InvalidParameterError(
                        f"`pattern` must name each placeholder once; got {pattern!r}."
                    )
                self.fields.append(part)
                regex += f"(?P<{part}>{'[^/]+?' if '/' in pattern else '.+?'})"
        self._regex = re.compile(regex)
        self.depth = pattern.strip("/").count("/") + 1

    def match(self, names: Iterable[str]) -> dict[str, Any] | None:
        """Return the fields parsed from the first name that matches, or None.

        ``names`` are path components, innermost first; a pattern of ``k`` components is
        matched against each run of ``k`` consecutive components joined by ``/``.
        """
        names = list(names)
        if self.depth > 1:
            k = self.depth
            names = ["/".join(reversed(names[i : i + k])) for i in range(len(names) - k + 1)]
        for name in names:
            m = self._regex.fullmatch(name)
            if m is None:
                continue
            out: dict[str, Any] = {}
            for key, text in m.groupdict().items():
                canon = self._ALIASES.get(key, key)
                if canon == "difficulty":
                    num = to_float(text)
                    if num is None:
                        out["difficulty_label"] = text
                    else:
                        out["difficulty"] = num
                else:
                    out[canon] = text
            return out
        return None


def to_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def coerce_value(field_: str, value: Any, where: str) -> Any:
    """Convert a metadata or metric value to the column's type, or raise naming ``where``."""
    if type(value) is float and value == value and field_ not in _NOT_FLOAT:
        return value  # the common case: a finite float metric (fast path)
    if is_missing(value):
        return None
    if field_ in TEXT_FIELDS:
        return str(value)
    if field_ in INT_FIELDS:
        num = to_float(value)
        if num is None or not math.isfinite(num) or not float(num).is_integer():
            raise RunsFileError(f"{where}: field `{field_}` must be an integer; got {value!r}.")
        return int(num)
    if field_ in FLOAT_FIELDS or field_.startswith(("train_", "test_")):
        num = to_float(value)
        if num is None:
            raise RunsFileError(f"{where}: field `{field_}` must be a number; got {value!r}.")
        return num
    return value  # other fields keep their type ("2.10" stays a string)


def same_value(a: Any, b: Any) -> bool:
    fa, fb = to_float(a), to_float(b)
    if fa is not None and fb is not None:
        return math.isclose(fa, fb, rel_tol=1e-9, abs_tol=1e-12)
    return str(a) == str(b)


def merge_metadata(record: RunRecord) -> dict[str, Any]:
    """Merge the record's metadata candidates; raise on a conflict naming file and field."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source, meta in record.meta:
        for key, value in meta.items():
            value = coerce_value(key, value, f"{record.path} ({source})")
            if value is None:
                continue
            if key in merged and not same_value(merged[key], value):
                raise MetadataConflictError(
                    f"{record.path}: field `{key}` of run {record.run_id!r} is "
                    f"{merged[key]!r} in {origin[key]} but {value!r} in {source}."
                )
            merged.setdefault(key, value)
            origin.setdefault(key, source)
    return merged
