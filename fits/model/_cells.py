"""From the runs table to the data a fit uses: the target, (d, n) cells, weights and surfaces.

The fitted quantity is the gap ``r = L_test - L_train`` of each run, with the run's own training
loss (the final model on its training subset, eval mode) as a known offset; with
``target="error"`` both are 0-1 errors (``1 - accuracy``). Runs sharing a difficulty and a budget
form a cell. A continuous difficulty (more than ``max_bins`` distinct values within a budget) is
quantile-binned within each budget into at most ``max_bins`` bins; the bin's difficulty is the mean
of its runs' difficulties (the runs keep their own). With replicated seeds the cells get inverse-variance weights: each cell's variance
of ``r`` is shrunk toward the pooled variance (prior weight of 2 degrees of freedom, so a cell
whose 3 seeds happen to agree does not dominate the fit), and the weights are normalised to mean
one per run.

:class:`CellSurface` interpolates per-cell quantities (the training loss, a measured KL) at any
(d, n): piecewise linear in d within a budget, linear in log n between budgets, clamped at the
edges of what was observed (never extrapolated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from fits.exceptions import InsufficientDataError
from fits.model._choices import TARGETS, WEIGHTINGS
from pacbound.support import check_choice

__all__ = ["CellSurface", "FitData", "cell_sums", "inverse_variance_weights", "prepare_data"]

_SHRINK_DF = 2.0
MAX_BINS = 12
"""Default most difficulty bins per budget when the difficulty is continuous."""


@dataclass(frozen=True)
class CellSurface:
    """Values on the (difficulty x budget) grid, interpolated at any (d, n).

    Attributes
    ----------
    d_levels, n_levels : ndarray
        Sorted observed difficulties and budgets.
    values : ndarray, shape (..., len(d_levels), len(n_levels))
        Cell values; leading axes are batch axes (e.g. bootstrap draws).
    log : bool
        Interpolate ``log(values)`` (for positive quantities such as a KL).
    """

    d_levels: NDArray[np.float64]
    n_levels: NDArray[np.float64]
    values: NDArray[np.float64]
    log: bool = False

    def __call__(self, d: Any, n: Any) -> NDArray[np.float64]:
        """Interpolate at points ``d``, ``n`` (broadcast together).

        Without batch axes the result has the points' shape. With ``values`` of shape
        (B, nd, nn), points of shape (P,) give (B, P) and points of shape (B, P) are paired
        with their batch entry.
        """
        d = np.asarray(d, dtype=float)
        n = np.asarray(n, dtype=float)
        d, n = np.broadcast_arrays(d, n)
        v = np.log(self.values) if self.log else self.values
        if v.ndim > 2:
            batch = v.shape[:-2]
            v = v.reshape(-1, *v.shape[-2:])
            nb = v.shape[0]
            if d.ndim == 0 or d.shape[0] != nb or d.ndim == 1:
                d = np.broadcast_to(d, (nb, *d.shape))
                n = np.broadcast_to(n, (nb, *n.shape))
            bidx = np.arange(nb).reshape((nb,) + (1,) * (d.ndim - 1))
        else:
            batch, bidx = (), None
        i, wd = _bracket(self.d_levels, d)
        j, wn = _bracket(np.log(self.n_levels), np.log(n))
        i1 = np.minimum(i + 1, len(self.d_levels) - 1)
        j1 = np.minimum(j + 1, len(self.n_levels) - 1)

        def at(ii: Any, jj: Any) -> Any:
            return v[ii, jj] if bidx is None else v[bidx, ii, jj]

        out = (
            (1 - wd) * (1 - wn) * at(i, j)
            + wd * (1 - wn) * at(i1, j)
            + (1 - wd) * wn * at(i, j1)
            + wd * wn * at(i1, j1)
        )
        if batch:
            out = out.reshape(*batch, *out.shape[1:])
        return np.exp(out) if self.log else out

    def take(self, index: Any) -> CellSurface:
        """The surface of one batch entry (or a subset of them)."""
        return CellSurface(self.d_levels, self.n_levels, self.values[index], self.log)


def _bracket(levels: NDArray[np.float64], x: NDArray[np.float64]) -> tuple[Any, Any]:
    if len(levels) == 1:
        return np.zeros(x.shape, dtype=int), np.zeros(x.shape)
    xc = np.clip(x, levels[0], levels[-1])
    i = np.clip(np.searchsorted(levels, xc, side="right") - 1, 0, len(levels) - 2)
    w = (xc - levels[i]) / (levels[i + 1] - levels[i])
    return i, w


def grid_values(
    cell_d: NDArray[np.float64],
    cell_n: NDArray[np.float64],
    cell_values: NDArray[np.float64],
    d_levels: NDArray[np.float64],
    n_levels: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Place per-cell values (..., C) on the full grid (..., nd, nn), filling missing cells.

    A missing (d, n) cell is interpolated linearly in d from the observed cells of its budget
    (clamped at the ends), so irregular designs still give a surface.
    """
    cell_values = np.asarray(cell_values, dtype=float)
    batch = cell_values.shape[:-1]
    out = np.full((*batch, len(d_levels), len(n_levels)), np.nan)
    di = np.searchsorted(d_levels, cell_d)
    nj = np.searchsorted(n_levels, cell_n)
    out[..., di, nj] = cell_values
    for j in range(len(n_levels)):
        have = np.zeros(len(d_levels), dtype=bool)
        have[di[nj == j]] = True
        if have.all():
            continue
        known = np.flatnonzero(have)
        flat = out[..., :, j].reshape(-1, len(d_levels))
        for row in flat:
            row[:] = np.interp(d_levels, d_levels[known], row[known])
        out[..., :, j] = flat.reshape((*batch, len(d_levels)))
    return out


@dataclass(frozen=True)
class FitData:
    """The runs a fit uses, aggregated by (d, n) cell.

    Attributes
    ----------
    target : {"loss", "error"}
        The metric: cross-entropy loss, or 0-1 error ``1 - accuracy``.
    runs : DataFrame
        The included runs (canonical columns).
    excluded : list of dict
        Runs left out, each ``{"run_id", "reason"}``.
    cells : DataFrame
        One row per cell: ``d, n, m`` (runs), ``r_mean, r_sd, train_mean, test_mean,
        test_sd, K_mean`` (NaN without a measured complexity), ``weight`` (per run).
    cell_of_run : ndarray of int
        The cell index of each included run.
    r, train, test, K, w : ndarray
        Per run: the fitted gap ``test - train``, the train and test metric, the measured
        complexity (or NaN), and the run's weight.
    d_levels, n_levels : ndarray
        Sorted distinct difficulties and budgets.
    weighting : str
        How weights were set ("inverse-variance" or "none").
    complexity_column : str or None
        The runs column used as measured K (``kl`` or ``sq_dist``).
    max_bins : int
        Most difficulty bins per budget (0: never bin).
    binning : dict or None
        How the difficulty was binned, or None when no budget was: ``max_bins``, ``budgets``
        (the binned budgets), ``distinct`` (their distinct difficulties before binning) and
        ``bins`` (the bins made, per binned budget).
    """

    target: str
    runs: pd.DataFrame = field(repr=False)
    excluded: list[dict[str, Any]]
    cells: pd.DataFrame = field(repr=False)
    cell_of_run: NDArray[np.int_] = field(repr=False)
    r: NDArray[np.float64] = field(repr=False)
    train: NDArray[np.float64] = field(repr=False)
    test: NDArray[np.float64] = field(repr=False)
    K: NDArray[np.float64] = field(repr=False)
    w: NDArray[np.float64] = field(repr=False)
    d_levels: NDArray[np.float64] = field(repr=False)
    n_levels: NDArray[np.float64] = field(repr=False)
    weighting: str = "none"
    complexity_column: str | None = None
    max_bins: int = MAX_BINS
    binning: dict[str, Any] | None = None

    @property
    def n_runs(self) -> int:
        return len(self.r)

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def cell_d(self) -> NDArray[np.float64]:
        return self.cells["d"].to_numpy(float)

    @property
    def cell_n(self) -> NDArray[np.float64]:
        return self.cells["n"].to_numpy(float)

    @property
    def cell_weight(self) -> NDArray[np.float64]:
        """Total weight of each cell (sum of its runs' weights)."""
        return np.bincount(self.cell_of_run, weights=self.w, minlength=self.n_cells)

    def cell_means(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Weighted cell means of per-run ``values`` (..., runs) -> (..., cells)."""
        values = np.asarray(values, dtype=float)
        total = cell_sums(self.w * values, self.cell_of_run, self.n_cells)
        return total / cell_sums(self.w, self.cell_of_run, self.n_cells)

    def surface(self, cell_values: NDArray[np.float64], *, log: bool = False) -> CellSurface:
        """A :class:`CellSurface` from per-cell values (..., cells)."""
        vals = grid_values(self.cell_d, self.cell_n, cell_values, self.d_levels, self.n_levels)
        return CellSurface(self.d_levels, self.n_levels, vals, log)

    def subset(self, keep_budgets: Any) -> FitData:
        """The same data restricted to the given budgets (for cross-validation)."""
        keep = self.runs["n"].astype(float).isin([float(x) for x in keep_budgets]).to_numpy()
        return prepare_data(
            self.runs[keep].reset_index(drop=True),
            target=self.target,
            weights=self.weighting,
            complexity=self.complexity_column,
            min_budgets=1,
            max_bins=self.max_bins,
        )


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _metric_columns(target: str) -> tuple[str, str]:
    return ("train_loss", "test_loss") if target == "loss" else ("train_acc", "test_acc")


def prepare_data(
    runs: pd.DataFrame,
    *,
    target: str = "loss",
    weights: str = "auto",
    complexity: str | None = None,
    exclude: Any = (),
    min_budgets: int = 2,
    max_bins: int = MAX_BINS,
) -> FitData:
    """Check the runs and aggregate them into cells.

    Parameters
    ----------
    runs : DataFrame
        The runs table of :func:`fits.load_runs`.
    target : {"loss", "error"}, default "loss"
        Fit losses, or 0-1 errors computed as ``1 - accuracy``.
    weights : {"auto", "inverse-variance", "none"}, default "auto"
        ``auto`` uses inverse-variance weights when every cell has at least two runs (that
        are not all identical).
    complexity : {"kl", "sq_dist"} or None
        A measured complexity column that every run must have.
    exclude : iterable of str
        Run ids to leave out (recorded in the fit).
    min_budgets : int
        Fewest distinct budgets allowed.
    max_bins : int, default 12
        A budget whose runs have more than ``max_bins`` distinct difficulties (a continuous
        difficulty) has them quantile-binned into at most ``max_bins`` bins, each cell at the
        mean difficulty of its runs; 0 never bins (every distinct difficulty is a cell).

    Raises
    ------
    fits.exceptions.InsufficientDataError
        Missing or non-finite values, or too few budgets.
    """
    check_choice(target, "target", TARGETS)
    check_choice(weights, "weights", WEIGHTINGS)
    if not isinstance(runs, pd.DataFrame):
        raise InsufficientDataError(
            f"`runs` must be a runs table (DataFrame); got {type(runs).__name__}."
        )
    train_col, test_col = _metric_columns(target)
    need = ["run_id", "difficulty", "n", train_col, test_col]
    if complexity is not None:
        need.append(complexity)
    missing = [c for c in need if c not in runs.columns]
    if missing:
        hint = " (use target='loss' or log eval accuracies)" if target == "error" else ""
        raise InsufficientDataError(
            f"`runs` must have columns {missing}{hint}; got {list(runs.columns)}."
        )
    excluded_ids = {str(x) for x in exclude}
    unknown = excluded_ids - set(runs["run_id"].astype(str))
    if unknown:
        raise InsufficientDataError(
            f"`exclude` must name runs of the table; got unknown {sorted(unknown)}."
        )
    keep = ~runs["run_id"].astype(str).isin(excluded_ids)
    excluded = [{"run_id": rid, "reason": "excluded by the user"} for rid in sorted(excluded_ids)]
    frame = runs[keep].reset_index(drop=True)
    for col in need[1:]:
        vals = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(vals)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            where = frame["path"].iloc[i] if "path" in frame.columns else ""
            raise InsufficientDataError(
                f"`{col}` must be finite for every run; got {_plain(frame[col].iloc[i])!r} for run "
                f"{frame['run_id'].iloc[i]!r}{f' ({where})' if where else ''}. Exclude the run or "
                "fix its metrics."
            )
    if target == "error":
        for col in (train_col, test_col):
            vals = frame[col].to_numpy(float)
            if ((vals < 0) | (vals > 1)).any():
                raise InsufficientDataError(
                    f"`{col}` must be in [0, 1]; got {float(vals[(vals < 0) | (vals > 1)][0])!r}."
                )
    else:  # a cross-entropy loss is >= 0: a negative one is a mislabelled column or a bug
        import warnings

        for col in (train_col, test_col):
            vals = frame[col].to_numpy(float)
            if (vals < 0).any():
                warnings.warn(
                    f"`{col}` should be >= 0 (a loss); got {int((vals < 0).sum())} negative "
                    f"values, e.g. {float(vals[vals < 0][0])!r}; check the column.",
                    UserWarning,
                    stacklevel=2,
                )
    d = frame["difficulty"].to_numpy(float)
    n = frame["n"].to_numpy(float)
    if target == "loss":
        train = frame[train_col].to_numpy(float)
        test = frame[test_col].to_numpy(float)
    else:
        train = 1.0 - frame[train_col].to_numpy(float)
        test = 1.0 - frame[test_col].to_numpy(float)
    K = frame[complexity].to_numpy(float) if complexity is not None else np.full(len(d), np.nan)
    if complexity is not None and (K < 0).any():
        raise InsufficientDataError(
            f"`{complexity}` must be >= 0 for every run; got {float(K[K < 0][0])!r}."
        )
    n_levels = np.unique(n)
    d_cell, binning = _bin_difficulty(d, n, max_bins)
    d_levels = np.unique(d_cell)
    if len(n_levels) < min_budgets:
        raise InsufficientDataError(
            f"the fit needs runs at {min_budgets} or more budgets `n` to identify how the gap "
            f"shrinks with n; got {len(n_levels)} ({', '.join(f'{x:g}' for x in n_levels)})."
        )
    uniq, cell_of_run = np.unique(np.stack([n, d_cell], axis=1), axis=0, return_inverse=True)
    cell_of_run = cell_of_run.ravel()
    n_cells = len(uniq)
    r = test - train
    m = np.bincount(cell_of_run, minlength=n_cells).astype(float)
    mean_r = np.bincount(cell_of_run, weights=r, minlength=n_cells) / m
    dev = r - mean_r[cell_of_run]
    ss = np.bincount(cell_of_run, weights=dev**2, minlength=n_cells)
    df = m - 1
    sd = np.where(df > 0, np.sqrt(ss / np.maximum(df, 1)), np.nan)
    replicated = bool((m >= 2).all())
    if weights == "inverse-variance" and not replicated:
        raise InsufficientDataError(
            "`weights` 'inverse-variance' needs two or more runs (seeds) in every (d, n) cell; "
            f"got {int((m < 2).sum())} cells with one run."
        )
    use_iv = weights == "inverse-variance" or (weights == "auto" and replicated and ss.sum() > 0)
    if use_iv:
        if not ss.sum() > 0:
            raise InsufficientDataError(
                "inverse-variance weights need seeds that differ; every cell has zero variance."
            )
        w = inverse_variance_weights(r, cell_of_run, n_cells)
    else:
        w = np.ones(len(r))
    cells = pd.DataFrame(
        {
            "d": uniq[:, 1],
            "n": uniq[:, 0],
            "m": m.astype(int),
            "r_mean": mean_r,
            "r_sd": sd,
            "train_mean": np.bincount(cell_of_run, weights=train, minlength=n_cells) / m,
            "test_mean": np.bincount(cell_of_run, weights=test, minlength=n_cells) / m,
            "test_sd": _cell_sd(test, cell_of_run, m),
            "K_mean": np.bincount(cell_of_run, weights=np.nan_to_num(K), minlength=n_cells) / m
            if complexity is not None
            else np.full(n_cells, np.nan),
        }
    )
    first_run = np.unique(cell_of_run, return_index=True)[1]
    cells["weight"] = w[first_run]
    return FitData(
        target=target,
        runs=frame,
        excluded=excluded,
        cells=cells,
        cell_of_run=cell_of_run,
        r=r,
        train=train,
        test=test,
        K=K,
        w=w,
        d_levels=d_levels,
        n_levels=n_levels,
        weighting="inverse-variance" if use_iv else "none",
        complexity_column=complexity,
        max_bins=max_bins,
        binning=binning,
    )


def _bin_difficulty(
    d: NDArray[np.float64], n: NDArray[np.float64], max_bins: int
) -> tuple[NDArray[np.float64], dict[str, Any] | None]:
    """Each run's cell difficulty: its own, or its bin's mean when its budget is binned.

    A budget with more than ``max_bins`` distinct difficulties gets bin edges at the
    ``k / max_bins`` quantiles of its runs' difficulties (k = 1..max_bins-1); runs with equal
    difficulties share a bin, empty bins are dropped, and each run's cell difficulty is the mean
    difficulty of the runs in its bin. Budgets are binned independently, so a subset of the
    budgets (cross-validation) gets the same cells.
    """
    if max_bins < 0 or int(max_bins) != max_bins:
        raise InsufficientDataError(f"`max_bins` must be an integer >= 0; got {max_bins!r}.")
    out = d.copy()
    if not max_bins:
        return out, None
    budgets, distinct, bins = [], [], []
    for level in np.unique(n):
        idx = np.flatnonzero(n == level)
        vals = d[idx]
        k = len(np.unique(vals))
        if k <= max_bins:
            continue
        edges = np.quantile(vals, np.arange(1, max_bins) / max_bins)
        which = np.searchsorted(edges, vals, side="right")
        sums = np.bincount(which, weights=vals, minlength=max_bins)
        counts = np.bincount(which, minlength=max_bins)
        means = sums / np.maximum(counts, 1)
        out[idx] = means[which]
        budgets.append(float(level))
        distinct.append(k)
        bins.append(int((counts > 0).sum()))
    if not budgets:
        return out, None
    return out, {"max_bins": int(max_bins), "budgets": budgets, "distinct": distinct, "bins": bins}


def inverse_variance_weights(
    r: NDArray[np.float64], cell_of_run: NDArray[np.int_], n_cells: int
) -> NDArray[np.float64]:
    """Per-run weights 1/s^2 of the run's cell, with s^2 shrunk toward the pooled variance.

    ``r`` is (..., runs) (leading axes: bootstrap draws); the weights have mean one per row.
    The cell variance gets a prior of 2 degrees of freedom at the pooled variance, so that a
    cell whose few seeds happen to agree does not dominate.
    """
    r = np.asarray(r, dtype=float)
    m = np.bincount(cell_of_run, minlength=n_cells).astype(float)
    mean = cell_sums(r, cell_of_run, n_cells) / m
    ss = cell_sums((r - mean[..., cell_of_run]) ** 2, cell_of_run, n_cells)
    return shrunk_cell_weights(ss, m)[..., cell_of_run]


def shrunk_cell_weights(ss: NDArray[np.float64], m: NDArray[np.float64]) -> NDArray[np.float64]:
    """The per-run weight of each cell from its within-cell sum of squares ``ss`` (..., cells)
    and its run count ``m`` (cells,): :func:`inverse_variance_weights` without the runs."""
    df = m - 1.0
    pooled = ss.sum(axis=-1, keepdims=True) / df.sum()
    shrunk = (ss + _SHRINK_DF * pooled) / (df + _SHRINK_DF)
    w = 1.0 / np.maximum(shrunk, 1e-300)
    return w / (np.sum(w * m, axis=-1, keepdims=True) / m.sum())


def cell_sums(
    values: NDArray[np.float64], cell_of_run: NDArray[np.int_], n_cells: int
) -> NDArray[np.float64]:
    """Sums of per-run ``values`` (..., runs) over the runs of each cell: (..., cells).

    One ``bincount`` over (row, cell) keys: linear in the number of values, where a one-hot
    product would cost runs x cells per row.
    """
    values = np.asarray(values, dtype=float)
    lead = values.shape[:-1]
    flat = values.reshape(-1, values.shape[-1])
    keys = np.arange(len(flat))[:, None] * n_cells + np.asarray(cell_of_run)[None, :]
    out = np.bincount(keys.ravel(), weights=flat.ravel(), minlength=len(flat) * n_cells)
    return out.reshape(*lead, n_cells)


def _cell_sd(
    values: NDArray[np.float64], cell: NDArray[np.int_], m: NDArray[np.float64]
) -> NDArray[np.float64]:
    mean = np.bincount(cell, weights=values, minlength=len(m)) / m
    ss = np.bincount(cell, weights=(values - mean[cell]) ** 2, minlength=len(m))
    return np.where(m > 1, np.sqrt(ss / np.maximum(m - 1, 1)), np.nan)
