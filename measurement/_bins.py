"""Difficulty bins and the threshold-robustness check.

Bins are right-closed intervals between interior thresholds t_1 < ... < t_{k-1}:
(-inf, t_1], (t_1, t_2], ..., (t_{k-1}, inf). Thresholds come from equal-count quantiles of
the scores (default tertiles, labelled easy/medium/hard), equal-width cuts of [min, max], or
are given explicitly. Unscored examples (NaN) get no bin.

Bin thresholds are a free parameter of any difficulty analysis, so
:func:`threshold_robustness` redoes it with every threshold shifted by s * |t| for
s in {-20%, -10%, +10%, +20%} (a zero threshold moves by s times the score range) and
reports what moves: bin sizes, examples that change bin, per-bin means of the value columns,
and which conclusions change. The conclusions checked, for each value column and group
(model): whether the per-bin mean rises with difficulty, which bin is highest and lowest, and,
with two or more groups, which group is lower in each bin.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_positive_int

__all__ = [
    "DEFAULT_SHIFTS",
    "Binning",
    "RobustnessReport",
    "assign_bins",
    "is_score_column",
    "make_bins",
    "ordered_bin_labels",
    "threshold_robustness",
]

DEFAULT_SHIFTS = (-0.2, -0.1, 0.1, 0.2)
_NAMED_LABELS = {
    2: ("easy", "hard"),
    3: ("easy", "medium", "hard"),
    5: ("very easy", "easy", "medium", "hard", "very hard"),
}


@dataclass(frozen=True)
class Binning:
    """Interior thresholds and labels of difficulty bins.

    Attributes
    ----------
    column : str
        The score column the bins cut.
    method : {"quantiles", "width", "thresholds"}
    thresholds : tuple of float
        Strictly increasing interior cut points (k - 1 of them for k bins).
    labels : tuple of str
        One per bin, from easiest to hardest.
    """

    column: str
    method: str
    thresholds: tuple[float, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        t = np.asarray(self.thresholds, dtype=np.float64)
        if not np.isfinite(t).all():
            raise InvalidParameterError(f"`thresholds` must be finite; got {list(t)}.")
        if len(t) and (np.diff(t) <= 0).any():
            raise InvalidParameterError(
                f"`thresholds` must be strictly increasing; got {[float(x) for x in t]}."
            )
        if len(self.labels) != len(t) + 1:
            raise InvalidParameterError(
                f"`labels` must have {len(t) + 1} entries (one per bin); got {len(self.labels)}."
            )
        if len(set(self.labels)) != len(self.labels):
            raise InvalidParameterError(f"`labels` must be distinct; got {list(self.labels)}.")

    def assign(self, values: Any) -> pd.Categorical:
        """The bin label of each value (missing for NaN), as an ordered categorical."""
        v = np.asarray(values, dtype=np.float64)
        codes = np.searchsorted(np.asarray(self.thresholds), v, side="left")
        codes = np.where(np.isnan(v), -1, codes)
        return pd.Categorical.from_codes(codes, categories=list(self.labels), ordered=True)

    def shifted(self, shift: float, scale: float) -> Binning:
        """The same bins with each threshold t moved to t + shift * |t| (or shift * scale)."""
        t = np.asarray(self.thresholds, dtype=np.float64)
        moved = t + shift * np.where(t != 0, np.abs(t), scale)
        return Binning(self.column, self.method, tuple(float(x) for x in moved), self.labels)

    def __str__(self) -> str:
        edges = ["-inf", *(f"{t:.6g}" for t in self.thresholds), "inf"]
        parts = [
            f"{lab}: ({edges[i]}, {edges[i + 1]}{')' if i == len(self.labels) - 1 else ']'}"
            for i, lab in enumerate(self.labels)
        ]
        return f"Bins of {self.column} by {self.method}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "method": self.method,
            "thresholds": list(self.thresholds),
            "labels": list(self.labels),
        }


def is_score_column(series: pd.Series) -> bool:
    """Whether a column holds a numeric score to cut into bins (not bin labels): numeric in
    every row, with more than 10 distinct values, and not categorical."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return False
    numeric = pd.to_numeric(series, errors="coerce")
    return bool(numeric.notna().all()) and numeric.nunique() > 10


def ordered_bin_labels(values: pd.Series, reference: pd.Series) -> pd.Categorical:
    """``values`` (bin labels) as an ordered categorical, in the order of ``reference``: its
    categories when it is categorical, else the order of the default labels (easy to hard)
    when it uses them, else natural order ("bin2" before "bin10")."""
    if isinstance(reference.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in reference.cat.categories]
    else:
        seen = [str(v) for v in dict.fromkeys(reference.dropna())]
        named = _NAMED_LABELS[5]  # holds every default label set
        if set(seen) <= set(named):
            cats = [lab for lab in named if lab in seen]
        else:
            cats = sorted(seen, key=_natural_key)
    return pd.Categorical(values.astype(str), categories=cats, ordered=True)


def _natural_key(label: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", label))


def make_bins(
    values: Any,
    *,
    column: str = "difficulty",
    quantiles: int | None = None,
    width: int | None = None,
    thresholds: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
) -> Binning:
    """Choose bin thresholds for a score.

    Exactly one of ``quantiles`` (k equal-count bins), ``width`` (k equal-width bins over
    [min, max]) or ``thresholds`` (interior cut points) may be given; default tertiles.

    Parameters
    ----------
    values : array_like
        The scores (NaN ignored).
    column : str
        Recorded in the result.
    labels : sequence of str, optional
        Default: easy/hard (2 bins), easy/medium/hard (3), very easy..very hard (5), else
        q1..qk (quantiles) or b1..bk.
    """
    given = [x is not None for x in (quantiles, width, thresholds)]
    if sum(given) > 1:
        raise InvalidParameterError(
            "`quantiles`, `width` and `thresholds` are exclusive: give at most one; got "
            f"quantiles={quantiles!r}, width={width!r}, thresholds={thresholds!r}."
        )
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if thresholds is not None:
        cuts = np.asarray(list(thresholds), dtype=np.float64)
        method = "thresholds"
    else:
        if not len(v):
            raise InvalidParameterError(
                f"`{column}` must have at least one scored value; got none."
            )
        if width is not None:
            k = check_positive_int(width, "width", minimum=2)
            lo, hi = float(v.min()), float(v.max())
            if lo == hi:
                raise InvalidParameterError(
                    f"`{column}` must take more than one value for equal-width bins; got only {lo}."
                )
            cuts = np.linspace(lo, hi, k + 1)[1:-1]
            method = "width"
        else:
            k = check_positive_int(3 if quantiles is None else quantiles, "quantiles", minimum=2)
            cuts = np.quantile(v, np.arange(1, k) / k)
            method = "quantiles"
            if (np.diff(cuts) <= 0).any():
                raise InvalidParameterError(
                    f"`quantiles` must give distinct thresholds, but {column} has too many ties "
                    f"for {k} equal-count bins (thresholds {[float(c) for c in cuts]}); give "
                    "fewer quantiles or explicit thresholds."
                )
    k = len(cuts) + 1
    if labels is None:
        if k in _NAMED_LABELS:
            labels = _NAMED_LABELS[k]
        else:
            labels = tuple(f"{'q' if method == 'quantiles' else 'b'}{i + 1}" for i in range(k))
    return Binning(column, method, tuple(float(c) for c in cuts), tuple(str(x) for x in labels))


def assign_bins(table: pd.DataFrame, binning: Binning, *, out_column: str = "bin") -> pd.DataFrame:
    """A copy of ``table`` with ``out_column`` holding each row's bin (ordered categorical).

    Raises :class:`~pacbound.exceptions.InvalidParameterError` when ``out_column`` is the
    score column itself (the bins would overwrite the scores); warns when it replaces another
    existing column.
    """
    if binning.column not in table.columns:
        raise InvalidParameterError(
            f"`by` must be a column of the table; got {binning.column!r} (columns: "
            f"{[str(c) for c in table.columns]})."
        )
    if out_column == binning.column:
        raise InvalidParameterError(
            f"`out_column` must differ from the score column `by`, or the bins would "
            f"overwrite the scores; got {out_column!r} for both."
        )
    if out_column in table.columns:
        warnings.warn(
            f"column {out_column!r} already exists; it is replaced by the bins of "
            f"{binning.column!r}.",
            UserWarning,
            stacklevel=2,
        )
    out = table.copy()
    values = pd.to_numeric(out[binning.column], errors="coerce")
    out[out_column] = binning.assign(values.to_numpy(dtype=np.float64))
    return out


@dataclass(frozen=True, eq=False)
class RobustnessReport:
    """What moves when the bin thresholds shift.

    Attributes
    ----------
    binning : Binning
        The unshifted bins.
    shifts : tuple of float
        Relative shifts applied (0 is the unshifted analysis).
    sizes : pandas.DataFrame
        ``shift, bin, n`` and ``thresholds``.
    moved : dict
        shift -> number of examples whose bin differs from the unshifted one.
    aggregates : pandas.DataFrame
        ``shift, group, column, bin, n, mean`` (empty without value columns).
    conclusions : dict
        shift -> {conclusion key: value}; :attr:`changes` lists the keys that differ from
        the unshifted analysis.
    """

    binning: Binning
    shifts: tuple[float, ...]
    sizes: pd.DataFrame
    moved: dict[float, int]
    aggregates: pd.DataFrame
    conclusions: dict[float, dict[str, Any]] = field(default_factory=dict)

    @property
    def changes(self) -> dict[float, list[str]]:
        """shift -> conclusions that differ from the unshifted analysis."""
        base = self.conclusions.get(0.0, {})
        out = {}
        for s in self.shifts:
            if s == 0.0:
                continue
            here = self.conclusions.get(s, {})
            out[s] = [
                f"{key}: {base.get(key)!r} -> {here.get(key)!r}"
                for key in sorted(set(base) | set(here))
                if base.get(key) != here.get(key)
            ]
        return out

    @property
    def robust(self) -> bool:
        """True when no conclusion changes under any shift."""
        return not any(self.changes.values())

    def __str__(self) -> str:
        lines = [f"Threshold robustness of {self.binning}"]
        pivot = self.sizes.pivot(index="shift", columns="bin", values="n")
        pivot = pivot[list(self.binning.labels)]
        lines.append("bin sizes by shift:")
        lines.extend("  " + line for line in pivot.to_string().splitlines())
        for s in self.shifts:
            if s == 0.0:
                continue
            changed = self.changes.get(s, [])
            lines.append(
                f"shift {s:+.0%}: {self.moved[s]} examples change bin; "
                + ("conclusions unchanged" if not changed else "changed: " + "; ".join(changed))
            )
        if self.conclusions.get(0.0):
            lines.append("conclusions at the chosen thresholds:")
            lines.extend(f"  {k}: {v}" for k, v in sorted(self.conclusions[0.0].items()))
        lines.append("robust: " + ("yes" if self.robust else "no"))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "binning": self.binning.to_dict(),
            "shifts": list(self.shifts),
            "sizes": self.sizes.to_dict(orient="records"),
            "moved": {f"{s:+g}": n for s, n in self.moved.items()},
            "aggregates": self.aggregates.to_dict(orient="records"),
            "conclusions": {f"{s:+g}": c for s, c in self.conclusions.items()},
            "changes": {f"{s:+g}": c for s, c in self.changes.items()},
            "robust": self.robust,
        }


def threshold_robustness(
    table: pd.DataFrame,
    binning: Binning,
    *,
    value_columns: Sequence[str] = (),
    group_column: str | None = None,
    shifts: Sequence[float] = DEFAULT_SHIFTS,
) -> RobustnessReport:
    """Redo a binned analysis with shifted thresholds and report what moves.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per example (or per (model, example) with ``group_column``), holding
        ``binning.column`` and the ``value_columns``.
    binning : Binning
        The chosen bins.
    value_columns : sequence of str
        Numeric columns whose per-bin means are compared (e.g. ``nll_mean``, ``correct``).
    group_column : str, optional
        Rows are grouped by this column (e.g. ``model``: base vs fine-tune).
    shifts : sequence of float
        Relative threshold shifts; default -20%, -10%, +10%, +20%.
    """
    for col in [binning.column, *value_columns, *([group_column] if group_column else [])]:
        if col not in table.columns:
            raise InvalidParameterError(
                f"`{col}` must be a column of the table; the table has "
                f"{[str(c) for c in table.columns]}."
            )
    scores = pd.to_numeric(table[binning.column], errors="coerce").to_numpy(dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    spread = float(finite.max() - finite.min()) if len(finite) else 1.0
    all_shifts = tuple(sorted({0.0, *(float(s) for s in shifts)}))
    base_codes = binning.assign(scores).codes
    size_rows, agg_rows = [], []
    moved: dict[float, int] = {}
    conclusions: dict[float, dict[str, Any]] = {}
    for s in all_shifts:
        try:
            bins = binning if s == 0.0 else binning.shifted(s, spread or 1.0)
        except InvalidParameterError:
            conclusions[s] = {"thresholds": "not increasing after the shift"}
            moved[s] = 0
            continue
        labels = bins.assign(scores)
        moved[s] = int((labels.codes != base_codes).sum())
        counts = pd.Series(labels).value_counts().reindex(binning.labels, fill_value=0)
        for lab, n in counts.items():
            size_rows.append(
                {"shift": s, "bin": lab, "n": int(n), "thresholds": list(bins.thresholds)}
            )
        frame = table.assign(_bin=labels)
        aggs = _aggregates(frame, value_columns, group_column, binning.labels)
        for row in aggs:
            agg_rows.append({"shift": s, **row})
        conclusions[s] = _conclusions(aggs, value_columns, binning.labels)
    return RobustnessReport(
        binning,
        all_shifts,
        pd.DataFrame(size_rows),
        moved,
        pd.DataFrame(agg_rows),
        conclusions,
    )


def _aggregates(frame, value_columns, group_column, labels) -> list[dict[str, Any]]:
    rows = []
    groups = (
        [(None, frame)] if group_column is None else list(frame.groupby(group_column, sort=True))
    )
    for group, sub in groups:
        for col in value_columns:
            values = pd.to_numeric(sub[col], errors="coerce")
            for lab in labels:
                v = values[sub["_bin"] == lab].dropna()
                rows.append(
                    {
                        "group": group,
                        "column": col,
                        "bin": lab,
                        "n": len(v),
                        "mean": float(v.mean()) if len(v) else float("nan"),
                    }
                )
    return rows


def _conclusions(aggs, value_columns, labels) -> dict[str, Any]:
    out: dict[str, Any] = {}
    frame = pd.DataFrame(aggs)
    if frame.empty:
        return out
    for col in value_columns:
        sub = frame[frame["column"] == col]
        groups = list(dict.fromkeys(sub["group"]))
        means = {g: sub[sub["group"] == g].set_index("bin")["mean"].reindex(labels) for g in groups}
        for g, m in means.items():
            tag = f"{col}" + (f" [{g}]" if g is not None else "")
            ok = m.dropna()
            if len(ok) < 2:
                continue
            diffs = np.diff(ok.to_numpy())
            out[f"{tag} rises with difficulty"] = bool((diffs > 0).all())
            out[f"{tag} highest bin"] = str(ok.idxmax())
            out[f"{tag} lowest bin"] = str(ok.idxmin())
        if len(groups) >= 2:
            for lab in labels:
                vals = {g: means[g].get(lab) for g in groups}
                if any(v is None or np.isnan(v) for v in vals.values()):
                    continue
                out[f"{col} lowest group in {lab}"] = str(min(vals, key=vals.get))
    return out
