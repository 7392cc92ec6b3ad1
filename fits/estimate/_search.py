"""Local searches over the shape parameters, batched over many starts and bootstrap draws.

- :func:`distinct_starts`: good grid points that are not neighbours of each other (restarts).
- :func:`pattern_search`: a compass search with diagonal moves in log coordinates, inside the
  bounds; derivative-free and robust (the main fit and the baselines).
- :func:`levenberg_marquardt`: damped Gauss–Newton on the variable-projection residuals, with
  forward-difference Jacobians; quadratic convergence near the optimum (the bootstrap refits).
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["ResidualProblem", "distinct_starts", "levenberg_marquardt", "pattern_search"]


class ResidualProblem(Protocol):
    """What the Levenberg–Marquardt search needs of a projected least-squares problem (the
    :class:`fits.estimate._varpro.Problem` it is given): residuals at shapes ``theta`` for the
    draws ``rows``, and their weighted sums of squares."""

    def residuals(
        self, theta: NDArray[np.float64], rows: NDArray[np.int_]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...


def distinct_starts(
    table: NDArray[np.float64], shape: tuple[int, ...], k: int, *, top: int = 24
) -> NDArray[np.int_]:
    """Up to ``k`` good grid indices per draw that are not grid neighbours of each other.

    Returns (D, k) flat grid indices; rows with fewer distinct candidates repeat their best.
    """
    D = table.shape[1]
    top = min(top, table.shape[0])
    order = np.argsort(table, axis=0)[:top].T  # (D, top)
    multi = np.stack(np.unravel_index(order, shape), axis=-1)  # (D, top, s)
    chosen = np.repeat(order[:, :1], k, axis=1)
    count = np.ones(D, dtype=int)
    for j in range(1, top):
        cand = multi[:, j]  # (D, s)
        far = np.ones(D, dtype=bool)
        for slot in range(k):
            picked = np.stack(np.unravel_index(chosen[:, slot], shape), axis=-1)
            near = (np.abs(picked - cand) <= 1).all(axis=-1) & (slot < count)
            far &= ~near
        take = far & (count < k)
        rows = np.flatnonzero(take)
        chosen[rows, count[rows]] = order[rows, j]
        count[rows] += 1
    return chosen


def _offsets(s: int) -> NDArray[np.float64]:
    eye = np.eye(s)
    offs = [*eye, *(-eye)]
    for i, j in itertools.combinations(range(s), 2):
        for si, sj in itertools.product((1, -1), repeat=2):
            offs.append(si * eye[i] + sj * eye[j])
    return np.array(offs)


def pattern_search(
    f: Any,
    theta0: NDArray[np.float64],
    rows: NDArray[np.int_],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    step: NDArray[np.float64],
    *,
    tol: float = 1e-5,
    max_iter: int = 60,
    active: NDArray[np.bool_] | None = None,
    prune_at: tuple[int, ...] = (8, 16),
    prune_margin: float = 0.02,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Batched compass search with diagonal moves, inside ``[lo, hi]``.

    Parameters
    ----------
    f : callable (theta (B, s), rows (B,)) -> values (B,)
    theta0 : ndarray (B, s)
        Starts (internal coordinates).
    rows : ndarray (B,)
        The draw each start belongs to.
    lo, hi, step : ndarray (s,)
        Bounds and initial step per coordinate.
    tol : float
        Stop a start when its step multiplier falls below ``tol``.
    active : ndarray of bool (B,), optional
        Starts to refine; the others keep their start.
    prune_at, prune_margin
        At these iterations, starts whose value exceeds their draw's best by more than
        ``prune_margin`` (relative) stop: they are descending into a worse basin.

    Returns
    -------
    theta, value : ndarray (B, s), (B,)
    """
    theta = np.clip(np.array(theta0, dtype=float), lo, hi)
    value = f(theta, rows)
    scale = np.ones(len(theta)) if active is None else np.where(active, 1.0, 0.0)
    offs = _offsets(theta.shape[1])
    for it in range(max_iter):
        if it in prune_at:
            # restarts clearly worse than their draw's best by now lie in worse basins: stop them
            best_of_draw = np.full(rows.max() + 1, np.inf)
            np.minimum.at(best_of_draw, rows, value)
            ref = best_of_draw[rows]
            scale[value > ref + prune_margin * np.abs(ref) + 1e-300] = 0.0
        act = np.flatnonzero(scale > tol)
        if act.size == 0:
            break
        cand = theta[act, None, :] + scale[act, None, None] * step * offs[None]
        cand = np.clip(cand, lo, hi)
        K = offs.shape[0]
        vals = f(cand.reshape(-1, theta.shape[1]), np.repeat(rows[act], K)).reshape(-1, K)
        j = np.argmin(vals, axis=1)
        best = vals[np.arange(len(act)), j]
        better = best < value[act] - 1e-14 * np.abs(value[act])
        moved = act[better]
        theta[moved] = cand[better, j[better]]
        value[moved] = best[better]
        scale[act[~better]] *= 0.5
    return theta, value


def levenberg_marquardt(
    problem: ResidualProblem,
    theta0: NDArray[np.float64],
    rows: NDArray[np.int_],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    *,
    max_iter: int = 30,
    rtol: float = 1e-12,
    active: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Batched Levenberg–Marquardt on the projected residuals, inside ``[lo, hi]``.

    The Jacobian of the variable-projection residual (amplitudes re-solved) is taken by forward
    differences; steps are clipped to the bounds and accepted only when the RSS falls (the
    damping then shrinks, else it grows). Quadratic convergence near the optimum makes this the
    fast local refiner of the bootstrap draws.

    Returns ``theta`` (B, s) and the RSS (B,).
    """
    theta = np.clip(np.array(theta0, dtype=float), lo, hi)
    B, s = theta.shape
    r, rss = problem.residuals(theta, rows)
    lam = np.full(B, 1e-3)
    live = np.ones(B, dtype=bool) if active is None else active.copy()
    eye = np.eye(s)
    for _ in range(max_iter):
        act = np.flatnonzero(live)
        if act.size == 0:
            break
        th, ra = theta[act], r[act]
        h = 1e-6 * np.maximum(1.0, np.abs(th))
        probes = th[:, None, :] + h[:, None, :] * eye[None]  # (b, s, s): one probe per coordinate
        pr, _ = problem.residuals(probes.reshape(-1, s), np.repeat(rows[act], s))
        J = (pr.reshape(len(act), s, -1) - ra[:, None, :]) / h[:, :, None]  # (b, s, P)
        JTJ = np.einsum("bip,bjp->bij", J, J)
        g = np.einsum("bip,bp->bi", J, ra)
        damp = JTJ + lam[act, None, None] * (
            np.einsum("bii->bi", JTJ)[:, :, None] * eye + 1e-12 * eye
        )
        try:
            step = -np.linalg.solve(damp, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -g / (np.einsum("bii->bi", damp) + 1e-300)
        trial = np.clip(th + step, lo, hi)
        tr, trss = problem.residuals(trial, rows[act])
        better = np.isfinite(trss) & (trss < rss[act])
        gain = (rss[act] - trss) / np.maximum(rss[act], 1e-300)
        idx = act[better]
        theta[idx], r[idx], rss[idx] = trial[better], tr[better], trss[better]
        lam[idx] = np.maximum(lam[idx] / 3.0, 1e-12)
        lam[act[~better]] *= 4.0
        converged = (better & (gain < rtol)) | (~better & (lam[act] > 1e8))
        live[act[converged]] = False
    return theta, rss
