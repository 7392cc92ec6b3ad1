r"""d*(n) from the data alone, beside the model's: the observed best and a local smooth estimate.

For each budget :math:`n`, with :math:`\bar y_{d}` the mean test metric of the cell
:math:`(d, n)` over its seeds:

- the **observed best** difficulty :math:`\arg\min_d \bar y_d`, with the probability that each
  difficulty is best when the seeds of every cell are resampled (with replacement, within the
  cell: the design's noise, no model);
- a **local smooth estimate**: the vertex of the parabola through the observed minimum and its two
  neighbours on the difficulty grid. Where the minimum is interior the parabola is convex and its
  vertex lies between the neighbours, so the estimate is located by the data
  (**bracketed**). Where the minimum is the grid's first or last difficulty the data do not
  bracket d*: the estimate is that edge, flagged **edge** (d* may lie beyond the grid);
- a percentile interval of the smooth estimate over the same seed resamples.

A fitted curve may place d* inside the grid while the data put it at an edge: "bracketed" is
said here only where the data bracket the minimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fits.estimate._interval import ConfidenceInterval, percentile_bounds
from fits.model._cells import FitData
from pacbound.support import check_positive_int

__all__ = ["ModelFreeDStar", "model_free_dstar"]


@dataclass(frozen=True)
class ModelFreeDStar:
    """The data's own d* at one budget.

    Attributes
    ----------
    n : float
        The budget.
    observed_best : float
        The difficulty whose cell has the lowest mean test metric.
    best_probability : dict of float to float
        For each difficulty, the share of seed resamples in which it is best.
    smooth : float
        The local (three-point parabola) estimate of d*.
    interval : ConfidenceInterval
        Percentile interval of ``smooth`` over the seed resamples.
    status : {"bracketed", "edge"}
        Whether the observed minimum is interior to the difficulty grid.
    seeds : int
        Fewest seeds in a cell of this budget (1: the resampling has no spread).
    """

    n: float
    observed_best: float
    best_probability: dict[float, float]
    smooth: float
    interval: ConfidenceInterval
    status: str
    seeds: int

    def __str__(self) -> str:
        probs = ", ".join(f"d={d:g}: {p:.0%}" for d, p in self.best_probability.items() if p > 0)
        return (
            f"n={self.n:g}: observed best d={self.observed_best:g} ({probs}); local estimate "
            f"{self.smooth:.3g} {self.interval} [{self.status}]"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "observed_best": self.observed_best,
            "best_probability": {f"{d:g}": p for d, p in self.best_probability.items()},
            "smooth": self.smooth,
            "interval": self.interval.to_dict(),
            "status": self.status,
            "seeds": self.seeds,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ModelFreeDStar:
        return cls(
            n=float(obj["n"]),
            observed_best=float(obj["observed_best"]),
            best_probability={float(k): float(v) for k, v in obj["best_probability"].items()},
            smooth=float(obj["smooth"]),
            interval=ConfidenceInterval.from_dict(obj["interval"]),
            status=str(obj["status"]),
            seeds=int(obj["seeds"]),
        )


def local_vertex(d: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    r"""The local smooth d* of each row of ``y`` (..., len(d)) on the sorted grid ``d``.

    At the row's minimum :math:`i`: for :math:`0 < i < k-1` the vertex of the parabola through
    :math:`(d_{i-1}, y_{i-1}), (d_i, y_i), (d_{i+1}, y_{i+1})`, i.e.

    .. math::

        d^* = d_i - \frac12\,
        \frac{(d_i - d_{i-1})^2 (y_i - y_{i+1}) - (d_i - d_{i+1})^2 (y_i - y_{i-1})}
             {(d_i - d_{i-1})(y_i - y_{i+1}) - (d_i - d_{i+1})(y_i - y_{i-1})},

    which lies in :math:`[d_{i-1}, d_{i+1}]`; at an edge, the edge itself.
    """
    y = np.asarray(y, dtype=float)
    k = len(d)
    i = np.argmin(y, axis=-1)
    out = d[i].astype(float)
    if k < 3:
        return out
    inner = (i > 0) & (i < k - 1)
    ii = np.clip(i, 1, k - 2)
    y0 = np.take_along_axis(y, (ii - 1)[..., None], -1)[..., 0]
    y1 = np.take_along_axis(y, ii[..., None], -1)[..., 0]
    y2 = np.take_along_axis(y, (ii + 1)[..., None], -1)[..., 0]
    d0, d1, d2 = d[ii - 1], d[ii], d[ii + 1]
    num = (d1 - d0) ** 2 * (y1 - y2) - (d1 - d2) ** 2 * (y1 - y0)
    den = (d1 - d0) * (y1 - y2) - (d1 - d2) * (y1 - y0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(den != 0, d1 - 0.5 * num / den, d1)
    vertex = np.clip(vertex, d0, d2)
    return np.where(inner, vertex, out)


def model_free_dstar(
    data: FitData,
    *,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    rng: int | np.random.Generator | None = 0,
) -> list[ModelFreeDStar]:
    """The observed best difficulty and a local smooth d* per budget (see the module docstring).

    Parameters
    ----------
    data : FitData
        The runs (their test metric ``data.test`` per run, grouped in (d, n) cells).
    n_resamples : int, default 1000
        Seed resamples.
    confidence_level : float, default 0.95
    rng : int or Generator, default 0

    Returns
    -------
    list of ModelFreeDStar
        One per budget, in increasing n.
    """
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    generator = np.random.default_rng(rng)
    cells = data.cells
    # one resample of the seeds of every cell at once: run index draws within each cell
    members = [np.flatnonzero(data.cell_of_run == c) for c in range(data.n_cells)]
    boot = np.empty((n_resamples, data.n_cells))
    for c, idx in enumerate(members):
        picks = generator.integers(0, len(idx), size=(n_resamples, len(idx)))
        boot[:, c] = data.test[idx][picks].mean(axis=1)
    observed = cells["test_mean"].to_numpy(float)
    out = []
    for n in data.n_levels:
        at = np.flatnonzero(cells["n"].to_numpy(float) == n)
        at = at[np.argsort(cells["d"].to_numpy(float)[at])]
        d = cells["d"].to_numpy(float)[at]
        y = observed[at]
        y_boot = boot[:, at]
        best = d[int(np.argmin(y))]
        winners = d[np.argmin(y_boot, axis=1)]
        probs = {float(x): float(np.mean(winners == x)) for x in d}
        smooth = float(local_vertex(d, y))
        lo, hi = percentile_bounds(local_vertex(d, y_boot), confidence_level)
        interior = len(d) >= 3 and d[0] < best < d[-1]
        out.append(
            ModelFreeDStar(
                n=float(n),
                observed_best=float(best),
                best_probability=probs,
                smooth=smooth,
                interval=ConfidenceInterval(float(lo), float(hi), confidence_level),
                status="bracketed" if interior else "edge",
                seeds=int(cells["m"].to_numpy()[at].min()),
            )
        )
    return out
