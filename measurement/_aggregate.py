"""Per-bin aggregates of per-example losses, with bootstrap intervals, and the two gap tables.

Input: the long table of :class:`~measurement.ExampleLosses` rows (one per (model, example)),
with a bin column. For each (model, bin):

- ``nll_mean`` (or any numeric column such as ``correct``, ``bounded_loss``): the mean over
  examples of the per-example value;
- ``token_nll``: the token-weighted mean, sum(nll_sum) / sum(n_tokens);

each with a percentile bootstrap interval (examples resampled with replacement,
``n_resamples`` times; a seeded generator).

Gap tables, per model, side by side (base and fine-tune):

- **generalization gap** of a bin: mean loss on held-out examples of that bin minus mean loss
  on the training subset of that bin (rows marked by a split column);
- **extrapolation gap** of each harder bin b relative to the trained bin t: mean loss on b
  minus mean loss on t.

Differences are bootstrapped by resampling the two disjoint example sets independently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_in_interval, check_positive_int

__all__ = [
    "BinTable",
    "GapTable",
    "LossReport",
    "bin_aggregates",
    "extrapolation_gaps",
    "generalization_gaps",
    "loss_report",
]

TOKEN_NLL = "token_nll"


@dataclass(frozen=True, eq=False)
class BinTable:
    """Per-(model, bin) means with bootstrap intervals.

    Attributes
    ----------
    table : pandas.DataFrame
        ``model, bin, metric, n, mean, ci_low, ci_high``.
    confidence_level : float
    n_resamples : int
    """

    table: pd.DataFrame
    confidence_level: float = 0.95
    n_resamples: int = 2000

    def __str__(self) -> str:
        return _render(
            self.table, "mean", f"Per-bin means ({self.confidence_level:.0%} bootstrap CI)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "confidence_level": self.confidence_level,
            "n_resamples": self.n_resamples,
            "rows": self.table.to_dict(orient="records"),
        }


@dataclass(frozen=True, eq=False)
class GapTable:
    """A gap (difference of means) per (model, bin), with bootstrap intervals.

    Attributes
    ----------
    kind : {"generalization", "extrapolation"}
    table : pandas.DataFrame
        ``model, bin, metric, n_a, mean_a, n_b, mean_b, gap, ci_low, ci_high`` where gap =
        mean_a - mean_b (held-out minus train; harder bin minus trained bin).
    reference : str
        What ``b`` is (the training subset, or the trained bin).
    """

    kind: str
    table: pd.DataFrame
    reference: str
    confidence_level: float = 0.95
    n_resamples: int = 2000
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        what = (
            "held-out minus training subset, same bin"
            if self.kind == "generalization"
            else f"each harder bin minus the trained bin {self.reference!r}"
        )
        title = f"{self.kind.capitalize()} gap ({what}; {self.confidence_level:.0%} bootstrap CI)"
        text = _render(self.table, "gap", title)
        return text + "".join(f"\nnote: {n}" for n in self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reference": self.reference,
            "confidence_level": self.confidence_level,
            "n_resamples": self.n_resamples,
            "rows": self.table.to_dict(orient="records"),
            "notes": list(self.notes),
        }


def bin_aggregates(
    losses: pd.DataFrame,
    *,
    bin_column: str = "bin",
    metrics: Sequence[str] = ("nll_mean", TOKEN_NLL),
    model_column: str = "model",
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    rng: int | np.random.Generator = 0,
) -> BinTable:
    """Mean of each metric per (model, bin) with a percentile bootstrap interval.

    Parameters
    ----------
    losses : pandas.DataFrame
        Rows of per-example losses (any number of models), with ``bin_column``.
    metrics : sequence of str
        Numeric columns (mean over examples) or ``"token_nll"`` (sum nll_sum / sum n_tokens).
    confidence_level : float in (0, 1)
    n_resamples : int
    rng : int or numpy Generator
    """
    conf, reps, gen = _bootstrap_iv(confidence_level, n_resamples, rng)
    _require(losses, [bin_column, *_metric_columns(metrics)])
    rows = []
    for model, sub in _by_model(losses, model_column):
        for lab in _bin_order(losses[bin_column]):
            part = sub[sub[bin_column] == lab]
            for metric in metrics:
                num, den = _num_den(part, metric)
                mean, lo, hi = _mean_ci(num, den, conf, reps, gen)
                rows.append(
                    {
                        "model": model,
                        "bin": lab,
                        "metric": metric,
                        "n": len(num),
                        "mean": mean,
                        "ci_low": lo,
                        "ci_high": hi,
                    }
                )
    return BinTable(pd.DataFrame(rows), conf, reps)


def generalization_gaps(
    losses: pd.DataFrame,
    *,
    bin_column: str = "bin",
    split_column: str = "split",
    train_value: Any = "train",
    metric: str = "nll_mean",
    model_column: str = "model",
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    rng: int | np.random.Generator = 0,
) -> GapTable:
    """Held-out minus training-subset mean loss within each bin, per model.

    Rows whose ``split_column`` equals ``train_value`` are the training subset; all other rows
    of the same bin are held out.
    """
    conf, reps, gen = _bootstrap_iv(confidence_level, n_resamples, rng)
    _require(losses, [bin_column, split_column, *_metric_columns([metric])])
    is_train = losses[split_column] == train_value
    if not is_train.any():
        raise InvalidParameterError(
            f"`train_value` must occur in column {split_column!r}; got {train_value!r} (values: "
            f"{sorted(map(str, losses[split_column].dropna().unique()))[:10]})."
        )
    rows, notes = [], []
    for model, sub in _by_model(losses, model_column):
        train = sub[split_column] == train_value
        for lab in _bin_order(losses[bin_column]):
            in_bin = sub[bin_column] == lab
            a, b = sub[in_bin & ~train], sub[in_bin & train]
            if not len(b):
                continue
            rows.append(_gap_row(model, lab, metric, a, b, conf, reps, gen))
            if not len(a):
                notes.append(f"{model}, bin {lab}: no held-out examples")
    return GapTable(
        "generalization", pd.DataFrame(rows), "training subset", conf, reps, tuple(notes)
    )


def extrapolation_gaps(
    losses: pd.DataFrame,
    *,
    trained_bin: str,
    bin_column: str = "bin",
    metric: str = "nll_mean",
    model_column: str = "model",
    split_column: str | None = None,
    train_value: Any = "train",
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    rng: int | np.random.Generator = 0,
) -> GapTable:
    """Mean loss on each bin harder than ``trained_bin`` minus mean loss on ``trained_bin``.

    With ``split_column``, training-subset rows are left out on both sides (held-out only).
    """
    conf, reps, gen = _bootstrap_iv(confidence_level, n_resamples, rng)
    _require(losses, [bin_column, *_metric_columns([metric])])
    order = _bin_order(losses[bin_column])
    if trained_bin not in order:
        raise InvalidParameterError(f"`trained_bin` must be one of {order}; got {trained_bin!r}.")
    data = losses
    if split_column is not None:
        _require(losses, [split_column])
        data = losses[losses[split_column] != train_value]
    harder = order[order.index(trained_bin) + 1 :]
    notes = [] if harder else [f"{trained_bin!r} is the hardest bin: nothing to extrapolate to"]
    rows = []
    for model, sub in _by_model(data, model_column):
        ref = sub[sub[bin_column] == trained_bin]
        for lab in harder:
            rows.append(
                _gap_row(model, lab, metric, sub[sub[bin_column] == lab], ref, conf, reps, gen)
            )
    return GapTable("extrapolation", pd.DataFrame(rows), str(trained_bin), conf, reps, tuple(notes))


# ---------------------------------------------------------------------------------------------


def _bootstrap_iv(confidence_level, n_resamples, rng):
    conf = float(
        check_in_interval(
            confidence_level, "confidence_level", 0.0, 1.0, closed="neither", allow_nan=False
        )
    )
    reps = check_positive_int(n_resamples, "n_resamples")
    return conf, reps, np.random.default_rng(rng)  # a Generator is passed through as it is


def _metric_columns(metrics: Sequence[str]) -> list[str]:
    cols: list[str] = []
    for m in metrics:
        cols.extend(["nll_sum", "n_tokens"] if m == TOKEN_NLL else [m])
    return cols


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in frame.columns:
            raise InvalidParameterError(
                f"`{col}` must be a column of the losses table; it has "
                f"{[str(c) for c in frame.columns]}."
            )


def _by_model(frame: pd.DataFrame, model_column: str):
    if model_column not in frame.columns:
        return [("model", frame)]
    order = list(dict.fromkeys(frame[model_column]))
    return [(m, frame[frame[model_column] == m]) for m in order]


def _bin_order(col: pd.Series) -> list[Any]:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [c for c in col.cat.categories if (col == c).any()]
    return list(pd.unique(col.dropna()))


def _num_den(part: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    if metric == TOKEN_NLL:
        return (
            part["nll_sum"].to_numpy(dtype=np.float64),
            part["n_tokens"].to_numpy(dtype=np.float64),
        )
    values = pd.to_numeric(part[metric], errors="coerce").to_numpy(dtype=np.float64)
    values = values[~np.isnan(values)]
    return values, np.ones_like(values)


def _resampled_means(num, den, reps, gen, block=256):
    n = len(num)
    out = np.empty(reps)
    for s in range(0, reps, block):
        idx = gen.integers(0, n, size=(min(block, reps - s), n))
        out[s : s + len(idx)] = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    return out


def _percentile_ci(draws: np.ndarray, conf: float) -> tuple[float, float]:
    lo, hi = np.quantile(draws, [(1 - conf) / 2, (1 + conf) / 2])
    return float(lo), float(hi)


def _mean_ci(num, den, conf, reps, gen) -> tuple[float, float, float]:
    if not len(num):
        return float("nan"), float("nan"), float("nan")
    mean = float(num.sum() / den.sum())
    return mean, *_percentile_ci(_resampled_means(num, den, reps, gen), conf)


def _gap_row(model, lab, metric, a, b, conf, reps, gen) -> dict[str, Any]:
    num_a, den_a = _num_den(a, metric)
    num_b, den_b = _num_den(b, metric)
    row = {"model": model, "bin": lab, "metric": metric, "n_a": len(num_a), "n_b": len(num_b)}
    nan = float("nan")
    if not len(num_a) or not len(num_b):
        return {**row, "mean_a": nan, "mean_b": nan, "gap": nan, "ci_low": nan, "ci_high": nan}
    mean_a, mean_b = float(num_a.sum() / den_a.sum()), float(num_b.sum() / den_b.sum())
    draws = _resampled_means(num_a, den_a, reps, gen) - _resampled_means(num_b, den_b, reps, gen)
    lo, hi = _percentile_ci(draws, conf)
    return {
        **row,
        "mean_a": mean_a,
        "mean_b": mean_b,
        "gap": mean_a - mean_b,
        "ci_low": lo,
        "ci_high": hi,
    }


def _render(table: pd.DataFrame, value: str, title: str) -> str:
    if table.empty:
        return title + "\n  (no rows)"
    cells = table.assign(
        cell=[
            f"{v:.4f} [{lo:.4f}, {hi:.4f}]"
            for v, lo, hi in zip(table[value], table["ci_low"], table["ci_high"], strict=True)
        ]
    )
    lines = [title]
    for metric, sub in cells.groupby("metric", sort=False):
        pivot = sub.pivot(index="bin", columns="model", values="cell")
        pivot = pivot.reindex(list(dict.fromkeys(sub["bin"])))
        pivot = pivot[list(dict.fromkeys(sub["model"]))]
        lines.append(f"[{metric}]")
        lines.extend("  " + line for line in pivot.to_string().splitlines())
    return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class LossReport:
    """Per-bin aggregates and the two gap tables of one losses table (any number of models).

    Attributes
    ----------
    bins : BinTable
    generalization : GapTable or None
        When the table has a split column with training rows.
    extrapolation : GapTable or None
        When the trained bin is known.
    """

    bins: BinTable
    generalization: GapTable | None = None
    extrapolation: GapTable | None = None

    def __str__(self) -> str:
        parts = [str(self.bins)]
        parts += [str(t) for t in (self.generalization, self.extrapolation) if t is not None]
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bins": self.bins.to_dict(),
            "generalization": None
            if self.generalization is None
            else self.generalization.to_dict(),
            "extrapolation": None if self.extrapolation is None else self.extrapolation.to_dict(),
        }


def loss_report(
    losses: pd.DataFrame,
    *,
    bin_column: str = "bin",
    split_column: str | None = "split",
    train_value: Any = "train",
    trained_bin: str | None = None,
    metric: str = "nll_mean",
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    rng: int | np.random.Generator = 0,
) -> LossReport:
    """Per-bin aggregates and, where the table allows, the generalization and extrapolation gaps.

    The generalization table needs ``split_column`` with rows equal to ``train_value``; the
    extrapolation table needs ``trained_bin`` (held-out rows only when there is a split).
    """
    common = dict(
        confidence_level=confidence_level, n_resamples=n_resamples, rng=np.random.default_rng(rng)
    )
    metrics = [metric, TOKEN_NLL] if metric != TOKEN_NLL else [metric]
    if "correct" in losses.columns and metric != "correct":
        metrics.append("correct")
    bins = bin_aggregates(losses, bin_column=bin_column, metrics=metrics, **common)
    has_split = split_column is not None and split_column in losses.columns
    generalization = None
    if has_split and (losses[split_column] == train_value).any():
        generalization = generalization_gaps(
            losses,
            bin_column=bin_column,
            split_column=split_column,
            train_value=train_value,
            metric=metric,
            **common,
        )
    extrapolation = None
    if trained_bin is not None:
        extrapolation = extrapolation_gaps(
            losses,
            trained_bin=trained_bin,
            bin_column=bin_column,
            metric=metric,
            split_column=split_column if has_split else None,
            train_value=train_value,
            **common,
        )
    return LossReport(bins, generalization, extrapolation)
