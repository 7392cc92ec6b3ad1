"""Choose N training examples at the predicted optimal difficulty d*(N) from a scored dataset.

The dataset is a table (CSV, JSONL, Parquet) with a difficulty column on the scale the fit used:
either a numeric score (the runs' ``difficulty`` values were scores) or bin labels matching the
runs' ``difficulty_label`` (mapped to their numeric difficulty through the fit's runs).

Modes:

- ``nearest``: numeric score: the N examples whose score is closest to d*(N) (ties in random
  order); labels: the bin whose difficulty is closest to d*(N), filled from the next-closest bins
  when it runs short.
- ``mixture``: the two observed difficulty levels that bracket d*(N), mixed so that the mean
  difficulty is d*(N) (``N_hi = round(N (d* - d_lo)/(d_hi - d_lo))``). With a numeric score each
  example belongs to the level nearest its score.

The draw is reproducible with ``seed``. A d*(N) on the edge of the observed difficulties is
selected at the edge and flagged: the fit does not locate the optimum there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fits.exceptions import RunsFileError
from fits.results._result import DStarEstimate, FitResult, load_fit
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_choice, check_positive_int, read_table

__all__ = ["SelectionResult", "select_examples"]

MODES = ("nearest", "mixture")
_SCORE_NAMES = ("difficulty", "difficulty_score", "score")
_LABEL_NAMES = ("difficulty_label", "difficulty_bin", "bin")


@dataclass(frozen=True)
class SelectionResult:
    """The examples chosen for a budget.

    Attributes
    ----------
    budget : int
    d_star : DStarEstimate
        The predicted optimum at the budget, with its interval when the fit has a bootstrap.
    mode : {"nearest", "mixture"}
    column : str
        The dataset column that was matched to the fit's difficulty.
    seed : int
    counts : dict
        Selected examples per difficulty level (or label).
    mean_difficulty : float
        Mean difficulty of the selection (on the fit's scale).
    warnings : tuple of str
    selected : DataFrame
        The chosen rows (all the dataset's columns).
    """

    budget: int
    d_star: DStarEstimate
    mode: str
    column: str
    seed: int
    counts: dict[str, int]
    mean_difficulty: float
    warnings: tuple[str, ...]
    selected: pd.DataFrame = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "d_star": self.d_star.to_dict(),
            "mode": self.mode,
            "column": self.column,
            "seed": self.seed,
            "counts": dict(self.counts),
            "mean_difficulty": self.mean_difficulty,
            "warnings": list(self.warnings),
            "n_selected": len(self.selected),
        }

    def __str__(self) -> str:
        e = self.d_star
        ci = "" if e.interval is None else f" [{e.interval.low:.4g}, {e.interval.high:.4g}]"
        lines = [
            f"selected {len(self.selected)} examples for budget n={self.budget} ({self.mode}, "
            f"column {self.column!r}, seed {self.seed})",
            f"predicted d*({self.budget}) = {e.value:.4g}{ci}"
            + ("" if e.bracketed else " (edge of the observed difficulties: not bracketed)"),
            f"mean difficulty of the selection: {self.mean_difficulty:.4g}",
            "by difficulty: " + ", ".join(f"{k}: {v}" for k, v in self.counts.items()),
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def select_examples(
    data: pd.DataFrame | str | os.PathLike[str],
    budget: int,
    fit: FitResult | str | os.PathLike[str],
    *,
    column: str | None = None,
    mode: str = "nearest",
    seed: int = 0,
) -> SelectionResult:
    """Choose ``budget`` examples at the fit's predicted d*(budget).

    Parameters
    ----------
    data : DataFrame or path
        The scored dataset (CSV/TSV/JSONL/Parquet).
    budget : int
        How many examples to choose (the budget n).
    fit : FitResult or path
        A fit, or its ``fit.json`` (or the folder holding it).
    column : str, optional
        The difficulty column; default: the first of ``difficulty``, ``difficulty_score``,
        ``score``, then the label columns ``difficulty_label``, ``difficulty_bin``, ``bin``.
    mode : {"nearest", "mixture"}, default "nearest"
    seed : int, default 0

    Returns
    -------
    SelectionResult
    """
    check_choice(mode, "mode", MODES)
    budget = check_positive_int(budget, "budget")
    result = fit if isinstance(fit, FitResult) else load_fit(fit)
    frame = data if isinstance(data, pd.DataFrame) else read_table(data, error=RunsFileError)
    name = "DataFrame" if isinstance(data, pd.DataFrame) else str(data)
    if budget > len(frame):
        raise InvalidParameterError(
            f"`budget` must be at most the dataset size {len(frame)}; got {budget}."
        )
    column = column or next((c for c in (*_SCORE_NAMES, *_LABEL_NAMES) if c in frame.columns), None)
    if column is None or column not in frame.columns:
        raise RunsFileError(
            f"{name}: no difficulty column (looked for {list(_SCORE_NAMES + _LABEL_NAMES)}"
            + (f" and {column!r}" if column else "")
            + f"; columns: {list(frame.columns)}); name it with `column`."
        )
    est = result.d_star_at([budget])[0]
    warnings = []
    if not est.bracketed:
        warnings.append(
            f"d*({budget}) = {est.value:.4g} sits on the edge of the observed difficulties "
            f"[{result.model.d_range[0]:g}, {result.model.d_range[1]:g}]: the fit does not locate the "
            "optimum, which may lie beyond; the selection uses the edge."
        )
    lo_n, hi_n = result.data.n_levels[0], result.data.n_levels[-1]
    if not lo_n <= budget <= hi_n:
        warnings.append(
            f"budget {budget} is outside the fitted budgets [{lo_n:g}, {hi_n:g}]: d* there extrapolates "
            "the fitted model in n."
        )
    levels, values, labels = _levels(frame, column, result, name)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    if mode == "nearest" and labels is None:
        dist = np.abs(values[order] - est.value)
        chosen = order[np.argsort(dist, kind="stable")[:budget]]
    else:
        chosen = _from_levels(levels, values, labels, est.value, budget, mode, order, warnings)
    selected = frame.iloc[np.sort(chosen)].reset_index(drop=True)
    sel_vals = values[np.sort(chosen)]
    key = labels[np.sort(chosen)] if labels is not None else _nearest_level(sel_vals, levels)
    counts_raw = pd.Series(key).value_counts()
    counts = {
        str(k): int(v)
        for k, v in sorted(
            counts_raw.items(), key=lambda kv: _num_or_str(kv[0], levels, labels, values)
        )
    }
    return SelectionResult(
        budget, est, mode, column, seed, counts, float(np.mean(sel_vals)), tuple(warnings), selected
    )


def _num_or_str(key: Any, levels: Any, labels: Any, values: Any) -> float:
    if labels is None:
        return float(key)
    return float(values[np.flatnonzero(labels == key)[0]])


def _nearest_level(vals: np.ndarray, levels: np.ndarray) -> np.ndarray:
    idx = np.argmin(np.abs(vals[:, None] - levels[None, :]), axis=1)
    return np.array([f"{levels[i]:g}" for i in idx])


def _levels(
    frame: pd.DataFrame, column: str, result: FitResult, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Observed difficulty levels, each example's numeric difficulty, and its label (or None)."""
    levels = np.asarray(result.data.d_levels, dtype=float)
    raw = frame[column]
    numeric = pd.to_numeric(raw, errors="coerce")
    if numeric.notna().all():
        return levels, numeric.to_numpy(float), None
    runs = result.data.runs
    d_runs = runs["difficulty"].astype(float).tolist()
    raw_labels = (
        runs["difficulty_label"] if "difficulty_label" in runs.columns else [None] * len(runs)
    )
    run_labels = [
        f"{d:g}" if lab is None or lab != lab else str(lab)
        for lab, d in zip(raw_labels, d_runs, strict=True)
    ]
    mapping = dict(zip(run_labels, d_runs, strict=True))
    labels = raw.astype(str).to_numpy()
    unknown = sorted(set(labels) - set(mapping))
    if unknown:
        raise RunsFileError(
            f"{name}: column {column!r} has labels {unknown[:5]} that are not difficulty labels of the "
            f"fit's runs ({sorted(mapping)}), and it is not numeric."
        )
    return levels, np.array([mapping[x] for x in labels]), labels


def _from_levels(
    levels: np.ndarray,
    values: np.ndarray,
    labels: np.ndarray | None,
    target: float,
    budget: int,
    mode: str,
    order: np.ndarray,
    warnings: list[str],
) -> np.ndarray:
    """Pick examples level by level: the nearest level(s), or the bracketing mixture."""
    group = np.argmin(np.abs(values[:, None] - levels[None, :]), axis=1)
    if mode == "mixture":
        hi_i = int(np.clip(np.searchsorted(levels, target), 1, len(levels) - 1))
        lo_i = hi_i - 1
        lam = float(np.clip((target - levels[lo_i]) / (levels[hi_i] - levels[lo_i]), 0.0, 1.0))
        want = {hi_i: round(budget * lam), lo_i: budget - round(budget * lam)}
    else:
        want = {int(np.argmin(np.abs(levels - target))): budget}
    picked: list[int] = []
    used = np.zeros(len(values), dtype=bool)
    for lvl, k in want.items():
        pool = order[group[order] == lvl]
        take = pool[:k]
        if len(take) < k:
            warnings.append(
                f"only {len(take)} examples at difficulty {levels[lvl]:g} (wanted {k}); filled from the nearest levels."
            )
        picked.extend(take.tolist())
        used[take] = True
    short = budget - len(picked)
    if short > 0:
        rest = order[~used[order]]
        dist = np.abs(values[rest] - target)
        picked.extend(rest[np.argsort(dist, kind="stable")[:short]].tolist())
    return np.array(picked, dtype=int)
