"""Threshold robustness: how d*(n) moves when the difficulty-bin thresholds move by +-10%, +-20%.

Difficulty bins are cut from a per-example score (solution length, base-model NLL, ...) at
thresholds that are a free choice. This check asks how much the fitted optimum depends on it.

**Input.** A per-example table of the runs' training examples, one row per (run, example):
``run_id`` (a run of the runs table) and ``score`` (the example's difficulty score; another
column name through ``score=``), optionally ``example_id``. It is what a sweep already knows:
each run's training subset with its scores (e.g. the training JSONL of each run, scored by
``tradeoff difficulty score``, concatenated with a ``run_id`` column). ``pool`` may give the whole
scored dataset (default: the union of the training examples).

**Procedure.** With bin edges ``t`` (given, or the equal-count quantiles of the pooled scores
with as many bins as there are difficulty levels in the runs), each shift ``s`` in
``shifts`` moves every edge to ``t (1 + s)``. Each bin gets the median score of its pool
examples as its value, and each difficulty level of the runs gets the mean, over the training
examples used at that level, of their bins' values: the level's difficulty as seen through
the shifted binning, on the score scale. The model is refitted with these difficulties (same
form, loss and weights; a smaller bootstrap) and d*(n) is compared with the unshifted refit,
together with the bin that holds d*(n) under each binning.

The runs are not retrained: the check measures how the definition of difficulty moves the
conclusion for the same runs. A full check retrains on re-cut bins (a fresh sweep).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fits.exceptions import FitError, InsufficientDataError, RunsFileError
from pacbound.support import check_in_interval

__all__ = ["RobustnessResult", "threshold_robustness"]

DEFAULT_SHIFTS = (-0.2, -0.1, 0.0, 0.1, 0.2)


@dataclass(frozen=True)
class RobustnessResult:
    """d*(n) under shifted bin thresholds.

    Attributes
    ----------
    thresholds : tuple of float
        The unshifted bin edges.
    shifts : tuple of float
    table : DataFrame
        One row per (shift, n): ``shift, edges, n, d_star, low, high, bracketed, bin,
        change`` (d* minus the unshifted d*), ``bin_changed``, ``status``.
    levels : DataFrame
        The difficulty given to each original level under each shift.
    max_change : float
        Largest |change| of d* over the fitted shifts and budgets.
    relative_change : float
        ``max_change`` over the span of the unshifted difficulty levels.
    verdict : str
    """

    thresholds: tuple[float, ...]
    shifts: tuple[float, ...]
    table: pd.DataFrame = field(repr=False)
    levels: pd.DataFrame = field(repr=False)
    max_change: float
    relative_change: float
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        from fits.results._result import _records

        return {
            "thresholds": list(self.thresholds),
            "shifts": list(self.shifts),
            "max_change": self.max_change,
            "relative_change": self.relative_change,
            "verdict": self.verdict,
            "table": _records(self.table),
            "levels": _records(self.levels),
        }

    def __str__(self) -> str:
        cols = ["shift", "n", "d_star", "low", "high", "bracketed", "bin", "change", "status"]
        return (
            f"threshold robustness (edges {list(self.thresholds)}):\n"
            + self.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")
            + f"\n{self.verdict}"
        )

    def summary_html(self) -> str:
        cols = ["shift", "n", "d_star", "low", "high", "bracketed", "bin", "change", "status"]
        return (
            f"<p>Bin edges {html.escape(str([round(t, 6) for t in self.thresholds]))}, shifted by "
            f"{html.escape(', '.join(f'{s:+.0%}' for s in self.shifts))}.</p>"
            + self.table[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")
            + f"<p>{html.escape(self.verdict)}</p>"
        )


def _edges(pool: np.ndarray, n_bins: int, thresholds: Sequence[float] | None) -> np.ndarray:
    if thresholds is not None:
        edges = np.sort(np.asarray(list(thresholds), dtype=float))
        if len(edges) == 0:
            raise InsufficientDataError("`thresholds` must list at least one bin edge; got [].")
        return edges
    q = np.linspace(0, 1, n_bins + 1)[1:-1]
    return np.quantile(pool, q)


def threshold_robustness(
    runs: pd.DataFrame,
    examples: pd.DataFrame,
    *,
    thresholds: Sequence[float] | None = None,
    shifts: Sequence[float] = DEFAULT_SHIFTS,
    score: str = "score",
    pool: pd.DataFrame | None = None,
    n_resamples: int = 200,
    config: Any = None,
    **fit_options: Any,
) -> RobustnessResult:
    """Refit with shifted bin thresholds and report how d*(n) moves (see module docstring).

    Parameters
    ----------
    runs : DataFrame
        The runs table.
    examples : DataFrame
        ``run_id`` and ``score`` (or ``score=``) per training example of each run.
    thresholds : sequence of float, optional
        The bin edges used to cut the bins (default: equal-count quantiles of the pool).
    shifts : sequence of float, default (-0.2, -0.1, 0, 0.1, 0.2)
        Relative shifts of every edge (0 is always included as the reference).
    score : str, default "score"
    pool : DataFrame, optional
        The whole scored dataset (column ``score``), for the bins' values.
    n_resamples : int, default 200
        Bootstrap refits per shift.
    config : FitConfig, optional
        How each refit is done (:class:`fits.FitConfig`; its ``n_resamples``, ``cv`` and
        ``baselines`` are replaced by ``n_resamples``, no cross-validation, no baselines).
    **fit_options
        :class:`fits.FitConfig` fields, as in :func:`fits.fit_tradeoff`.
    """
    from fits.analysis._fit import fit_tradeoff

    for col in ("run_id", score):
        if col not in examples.columns:
            raise RunsFileError(
                f"examples table: field `{col}` is missing (columns: {list(examples.columns)})."
            )
    shifts = tuple(sorted({0.0, *(float(s) for s in shifts)}))
    for s in shifts:
        check_in_interval(s, "shifts", -0.9, 0.9)
    ex = examples[["run_id", score]].copy()
    ex["run_id"] = ex["run_id"].astype(str)
    ex[score] = pd.to_numeric(ex[score], errors="coerce")
    if ex[score].isna().any():
        raise RunsFileError(f"examples table: field `{score}` must be a number in every row.")
    run_ids = set(runs["run_id"].astype(str))
    unknown = sorted(set(ex["run_id"]) - run_ids)
    if unknown:
        raise RunsFileError(f"examples table: run_id {unknown[:5]} are not runs of the runs table.")
    missing = sorted(run_ids - set(ex["run_id"]))
    if missing:
        raise RunsFileError(f"examples table: no training examples for runs {missing[:5]}.")
    level_of = dict(zip(runs["run_id"].astype(str), runs["difficulty"].astype(float), strict=True))
    ex["level"] = ex["run_id"].map(level_of)
    pool_scores = (pool[score] if pool is not None else ex[score]).to_numpy(float)
    levels = np.unique(runs["difficulty"].astype(float))
    base_edges = _edges(pool_scores, len(levels), thresholds)
    if (base_edges <= 0).any():
        raise InsufficientDataError(
            f"`thresholds` must be > 0 to be shifted by a relative amount; got {base_edges.tolist()}."
        )
    rows, level_rows = [], []
    reference: dict[float, float] = {}
    for s in sorted(shifts, key=lambda v: (v != 0.0, v)):
        edges = base_edges * (1.0 + s)
        pool_bin = np.searchsorted(edges, pool_scores, side="right")
        values = np.array(
            [
                np.median(pool_scores[pool_bin == b]) if (pool_bin == b).any() else np.nan
                for b in range(len(edges) + 1)
            ]
        )
        ex_bin = np.searchsorted(edges, ex[score].to_numpy(float), side="right")
        ex_val = values[ex_bin]
        if np.isnan(ex_val).any():
            status = "a bin holds no pool example"
            rows.append({"shift": s, "edges": edges.tolist(), "status": status})
            continue
        new_level = pd.Series(ex_val).groupby(ex["level"].to_numpy()).mean()
        for lvl, val in new_level.items():
            level_rows.append({"shift": s, "level": float(lvl), "difficulty": float(val)})
        shifted = runs.copy()
        shifted["difficulty"] = shifted["difficulty"].astype(float).map(new_level)
        shifted["difficulty_label"] = None
        try:
            res = fit_tradeoff(
                shifted,
                config,
                n_resamples=n_resamples,
                cv=False,
                baselines=False,
                **fit_options,
            )
        except FitError as exc:
            rows.append({"shift": s, "edges": edges.tolist(), "status": f"not fitted: {exc}"})
            continue
        for e in res.d_star:
            bin_idx = int(np.searchsorted(edges, e.value, side="right"))
            if s == 0.0:
                reference[e.n] = e.value
            rows.append(
                {
                    "shift": s,
                    "edges": edges.tolist(),
                    "n": e.n,
                    "d_star": e.value,
                    "low": None if e.interval is None else e.interval.low,
                    "high": None if e.interval is None else e.interval.high,
                    "bracketed": e.bracketed,
                    "bin": bin_idx,
                    "status": "ok",
                }
            )
    table = pd.DataFrame(rows)
    for col in ("n", "d_star", "low", "high", "bracketed", "bin"):
        if col not in table.columns:
            table[col] = np.nan
    table["change"] = [
        r["d_star"] - reference[r["n"]] if r["status"] == "ok" and r["n"] in reference else np.nan
        for r in table.to_dict("records")
    ]
    ref_bin = {
        r["n"]: r["bin"]
        for r in table.to_dict("records")
        if r["shift"] == 0.0 and r["status"] == "ok"
    }
    table["bin_changed"] = [
        bool(r["bin"] != ref_bin.get(r["n"], r["bin"])) if r["status"] == "ok" else None
        for r in table.to_dict("records")
    ]
    ok = table[table["status"] == "ok"]
    max_change = (
        float(np.nanmax(np.abs(ok["change"])))
        if len(ok) and ok["change"].notna().any()
        else float("nan")
    )
    lev = pd.DataFrame(level_rows)
    span = float(np.ptp(lev[lev["shift"] == 0.0]["difficulty"])) if len(lev) else float("nan")
    rel = max_change / span if span and span > 0 else float("nan")
    verdict = _verdict(table, max_change, rel, shifts)
    return RobustnessResult(
        tuple(base_edges.tolist()), shifts, table, lev, max_change, rel, verdict
    )


def _verdict(table: pd.DataFrame, max_change: float, rel: float, shifts: Sequence[float]) -> str:
    failed = table[table["status"] != "ok"]
    ok = table[table["status"] == "ok"]
    if ok.empty or not (ok["shift"] == 0.0).any():
        return "The unshifted refit failed, so the robustness of d* cannot be assessed."
    changed = sorted({f"{n:g}" for n, c in zip(ok["n"], ok["bin_changed"], strict=True) if c})
    text = (
        f"Shifting the bin thresholds by {', '.join(f'{s:+.0%}' for s in shifts if s)} moved d*(n) by at "
        f"most {max_change:.3g} ({rel:.1%} of the span of the difficulty levels)"
    )
    text += (
        f"; the bin holding d* changed at n = {', '.join(changed)}."
        if changed
        else "; the bin holding d* did not change at any budget."
    )
    if not failed.empty:
        text += " Not fitted at shifts " + ", ".join(f"{s:+.0%}" for s in failed["shift"]) + "."
    return text
