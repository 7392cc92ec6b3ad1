r"""Variable projection: grid the shape parameters, solve the amplitudes exactly, refine.

Given shapes :math:`\theta`, the model :math:`X(\theta)\beta` is linear in the amplitudes
:math:`\beta = (A, B, E)` with :math:`A, B \ge 0`. The projected objective
:math:`\phi(\theta) = \min_{\beta} \sum_i w_i (y_i - X_i(\theta)\beta)^2` is solved exactly for
many :math:`\theta` at once: normal equations in float64 on column-scaled matrices, and the
constrained minimum as the best feasible least-squares solution over the active sets (the
optimum of a convex QP with sign constraints is the unconstrained solution on its inactive set,
and every feasible subset solution is a feasible point, so the best feasible one is optimal).

- :func:`grid_table`: :math:`\phi` at every grid point for many response vectors at once (the
  design matrices are shared, so the work is one matrix product per active set).
- the local searches that refine many (start, draw) pairs at once are in :mod:`fits.estimate._search`.
- :func:`refine`: scipy Nelder–Mead on :math:`\phi` for the main fit, then (for a robust loss)
  ``least_squares`` on all parameters with ``loss`` and ``f_scale``.
- :func:`refusal` (:class:`Refusal`): the guards: a shape on its bound or grid edge, an amplitude of
  about zero.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fits.estimate._search import levenberg_marquardt
from fits.model._families import TradeoffModel

__all__ = [
    "Problem",
    "Refusal",
    "constrained_ls",
    "grid_table",
    "refine",
    "refusal",
    "shape_grid",
    "tiny_amplitudes",
]

_RIDGE = 1e-12


class Refusal(enum.IntEnum):
    """Why a fit (or a bootstrap draw) is refused or flagged; ``OK`` (0) when it is not.

    Stored as integers (bootstrap ``flags`` arrays, ``fit.json``); compare with the members.
    """

    OK = 0
    """Nothing to refuse."""
    ON_BOUND = 1
    """A shape parameter sits on its bound (the edge of the grid), within 1e-3 of its range."""
    VANISHED_AMPLITUDE = 2
    """The gap (A) or extrapolation (B) amplitude is about zero, so there is no tradeoff."""
    NONFINITE = 3
    """The objective is not finite at the optimum."""

    @property
    def reason(self) -> str:
        """The short reason carried by :class:`~fits.exceptions.FitRefusedError`."""
        return {0: "ok", 1: "bound", 2: "amplitude", 3: "nonfinite"}[int(self)]


def normal_equations(
    X: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(X'WX, X'Wy, y'Wy)`` over the point axis (second to last of X)."""
    Xw = X * w[..., None]
    G = np.einsum("...pi,...pj->...ij", Xw, X)
    h = np.einsum("...pi,...p->...i", Xw, y)
    yy = np.einsum("...p,...p->...", w * y, y)
    return G, h, yy


def _subsets(nonneg: NDArray[np.bool_]) -> list[list[int]]:
    free = [i for i, nn in enumerate(nonneg) if not nn]
    cons = [i for i, nn in enumerate(nonneg) if nn]
    out = []
    for k in range(len(cons), -1, -1):
        for chosen in itertools.combinations(cons, k):
            idx = sorted([*free, *chosen])
            if idx:
                out.append(idx)
    return out


def constrained_ls(
    G: NDArray[np.float64],
    h: NDArray[np.float64],
    yy: NDArray[np.float64],
    nonneg: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sign-constrained least squares from normal equations, batched and broadcasting.

    Parameters
    ----------
    G : ndarray (..., p, p)
        ``X'WX``; its batch shape may broadcast against ``h``'s (e.g. one design per grid
        point, many responses).
    h : ndarray (..., p)
        ``X'Wy``.
    yy : ndarray (...)
        ``y'Wy``.
    nonneg : ndarray of bool (p,)
        Which coefficients must be >= 0.

    Returns
    -------
    coef : ndarray (..., p)
    rss : ndarray (...)
        The weighted residual sum of squares at ``coef`` (inf where the design is not finite).
    """
    p = G.shape[-1]
    diag = np.einsum("...ii->...i", G)
    finite_G = np.isfinite(G).all(axis=(-2, -1))
    scale = np.sqrt(np.where(np.isfinite(diag) & (diag > 0), diag, 1.0))
    Gs = np.where(finite_G[..., None, None], G, 0.0) / (scale[..., :, None] * scale[..., None, :])
    hs = np.where(np.isfinite(h), h, 0.0) / scale
    batch = np.broadcast_shapes(Gs.shape[:-2], hs.shape[:-1], np.shape(yy))
    best = np.full(batch, np.inf)
    coef = np.zeros((*batch, p))
    for idx in _subsets(nonneg):
        sub = Gs[..., idx, :][..., :, idx] + _RIDGE * np.eye(len(idx))
        inv = np.linalg.inv(sub)
        c = np.einsum("...ij,...j->...i", inv, hs[..., idx])
        rss = yy - np.einsum("...i,...i->...", c, hs[..., idx])
        cons = [j for j, i in enumerate(idx) if nonneg[i]]
        feasible = (c[..., cons] >= 0).all(axis=-1) if cons else np.ones(batch, dtype=bool)
        take = feasible & (rss < best)
        best = np.where(take, rss, best)
        full = np.zeros((*batch, p))
        full[..., idx] = c
        coef = np.where(take[..., None], full, coef)
    coef = coef / scale
    ok = finite_G & np.isfinite(h).all(axis=-1) & np.isfinite(best)
    return coef, np.where(ok, np.maximum(best, 0.0), np.inf)


def project_gte(
    sums: dict[str, NDArray[np.float64]],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Closed-form sign-constrained LS for the columns ``[G, T, 1]`` with ``A, B >= 0``.

    The free offset is projected out by weighted centring, leaving a 2x2 problem whose four
    active sets ({G, T}, {G}, {T}, {}) have closed forms. ``sums`` holds the weighted sums
    ``W, g, t, y, gg, tt, gt, gy, ty, yy`` (each broadcastable to the batch shape).

    Returns coefficients (..., 3) and the weighted RSS (...).
    """
    W = sums["W"]
    gm, tm, ym = sums["g"] / W, sums["t"] / W, sums["y"] / W
    Sgg = sums["gg"] - W * gm * gm
    Stt = sums["tt"] - W * tm * tm
    Sgt = sums["gt"] - W * gm * tm
    Sgy = sums["gy"] - W * gm * ym
    Sty = sums["ty"] - W * tm * ym
    Syy = sums["yy"] - W * ym * ym
    with np.errstate(divide="ignore", invalid="ignore"):
        det = Sgg * Stt - Sgt * Sgt
        A = (Stt * Sgy - Sgt * Sty) / det
        B = (Sgg * Sty - Sgt * Sgy) / det
        ok = (det > 1e-13 * np.abs(Sgg * Stt)) & (A >= 0) & (B >= 0)
        rss = np.where(ok, Syy - A * Sgy - B * Sty, np.inf)
        A = np.where(ok, A, 0.0)
        B = np.where(ok, B, 0.0)
        # the three smaller active sets: {G}, {T}, {}
        Ag = Sgy / Sgg
        r = np.where((Sgg > 0) & (Ag >= 0), Syy - Ag * Sgy, np.inf)
        better = r < rss
        rss = np.where(better, r, rss)
        A = np.where(better, Ag, A)
        B = np.where(better, 0.0, B)
        Bt = Sty / Stt
        r = np.where((Stt > 0) & (Bt >= 0), Syy - Bt * Sty, np.inf)
        better = r < rss
        rss = np.where(better, r, rss)
        A = np.where(better, 0.0, A)
        B = np.where(better, Bt, B)
        better = Syy < rss
        rss = np.where(better, Syy, rss)
        A = np.where(better, 0.0, A)
        B = np.where(better, 0.0, B)
        E = ym - A * gm - B * tm
    finite = np.isfinite(E) & np.isfinite(rss)
    coef = np.stack(np.broadcast_arrays(A, B, E), axis=-1)
    return np.where(finite[..., None], coef, 0.0), np.where(finite, np.maximum(rss, 0.0), np.inf)


def _sums(G: Any, T: Any, y: Any, w: Any) -> dict[str, NDArray[np.float64]]:
    """Weighted sums over the last axis for :func:`project_gte` (inputs broadcast)."""
    wg, wt = w * G, w * T
    return {
        "W": np.sum(np.broadcast_to(w, np.broadcast_shapes(np.shape(w), np.shape(y))), axis=-1),
        "g": wg.sum(-1),
        "t": wt.sum(-1),
        "y": (w * y).sum(-1),
        "gg": (wg * G).sum(-1),
        "tt": (wt * T).sum(-1),
        "gt": (wg * T).sum(-1),
        "gy": (wg * y).sum(-1),
        "ty": (wt * y).sum(-1),
        "yy": (w * y * y).sum(-1),
    }


@dataclass
class Problem:
    """Responses (one row per draw) at fixed points, for batched projected objectives.

    Attributes
    ----------
    model : TradeoffModel
    d, n : ndarray (P,)
        The points (cells, or runs).
    y : ndarray (D, P)
        Responses, one row per draw (one row for the main fit).
    w : ndarray (P,) or (D, P)
        Weights, shared or per draw.
    q, K : ndarray (P,) or (D, P), or None
        Training risk and measured complexity at the points.
    """

    model: TradeoffModel
    d: NDArray[np.float64]
    n: NDArray[np.float64]
    y: NDArray[np.float64]
    w: NDArray[np.float64]
    q: NDArray[np.float64] | None = None
    K: NDArray[np.float64] | None = None

    def _take(self, arr: NDArray[np.float64] | None, rows: NDArray[np.int_]) -> Any:
        if arr is None or arr.ndim == 1:
            return arr
        return arr[rows]

    def solve(
        self, theta: NDArray[np.float64], rows: NDArray[np.int_]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Amplitudes (B, 3) and weighted RSS (B,) at shapes ``theta`` (B, s) for draws ``rows``."""
        G, T = self.model.gap_and_extrap(
            theta, self.d, self.n, self._take(self.q, rows), self._take(self.K, rows)
        )
        w = self.w if self.w.ndim == 1 else self.w[rows]
        return project_gte(_sums(G, T, self.y[rows], w))

    def objective(self, theta: NDArray[np.float64], rows: NDArray[np.int_]) -> NDArray[np.float64]:
        return self.solve(theta, rows)[1]

    def residuals(
        self, theta: NDArray[np.float64], rows: NDArray[np.int_]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Projected weighted residuals sqrt(w)(y - X beta_hat) (B, P) and their RSS (B,)."""
        G, T = self.model.gap_and_extrap(
            theta, self.d, self.n, self._take(self.q, rows), self._take(self.K, rows)
        )
        w = self.w if self.w.ndim == 1 else self.w[rows]
        coef, rss = project_gte(_sums(G, T, self.y[rows], w))
        fitted = G * coef[:, 0:1] + T * coef[:, 1:2] + coef[:, 2:3]
        return np.sqrt(w) * (self.y[rows] - fitted), rss


def grid_points(model: TradeoffModel, points: int | None = None) -> NDArray[np.float64]:
    """All grid points (Gp, s) in internal coordinates, C order over the axes."""
    axes = model.grid(points)
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1)


def shape_grid(
    model: TradeoffModel, points: int | None = None
) -> tuple[NDArray[np.float64], tuple[int, ...], NDArray[np.float64]]:
    """The shape grid that seeds the local searches: its points (Gp, s) in C order, its shape
    (points per axis) and the initial search step (half a grid spacing per axis)."""
    axes = model.grid(points)
    step = np.array([(a[1] - a[0]) / 2.0 for a in axes])
    return grid_points(model, points), tuple(len(a) for a in axes), step


def grid_table(
    problem: Problem, grid: NDArray[np.float64], *, chunk: int = 256
) -> NDArray[np.float64]:
    """Projected RSS at every grid point for every draw: shape (Gp, D).

    The design uses shared covariates (their mean over draws when they differ), so the weighted
    sums over the points are matrix products of the grid's columns with the draws' weights.
    """
    q = problem.q if problem.q is None or problem.q.ndim == 1 else problem.q.mean(axis=0)
    K = problem.K if problem.K is None or problem.K.ndim == 1 else problem.K.mean(axis=0)
    y = problem.y
    w = np.broadcast_to(problem.w, y.shape)  # (D, P): weights may differ by draw
    wy = w * y
    out = np.empty((len(grid), y.shape[0]))
    base = {"W": w.sum(-1), "y": wy.sum(-1), "yy": (wy * y).sum(-1)}
    for start in range(0, len(grid), chunk):
        Gc, Tc = problem.model.gap_and_extrap(
            grid[start : start + chunk], problem.d, problem.n, q, K
        )
        # einsum, not BLAS: these products are small, and threaded BLAS stalls on busy machines
        sums = {
            **base,
            "g": np.einsum("gp,dp->gd", Gc, w),
            "t": np.einsum("gp,dp->gd", Tc, w),
            "gg": np.einsum("gp,dp->gd", Gc * Gc, w),
            "tt": np.einsum("gp,dp->gd", Tc * Tc, w),
            "gt": np.einsum("gp,dp->gd", Gc * Tc, w),
            "gy": np.einsum("gp,dp->gd", Gc, wy),
            "ty": np.einsum("gp,dp->gd", Tc, wy),
        }
        _, rss = project_gte(sums)
        out[start : start + chunk] = rss
    return out


@dataclass(frozen=True)
class RefineResult:
    """The main fit's optimum (the shapes, the amplitudes and how the optimiser ended)."""

    theta: NDArray[np.float64]
    amps: NDArray[np.float64]
    rss: float
    cost: float
    success: bool
    message: str
    nfev: int
    f_scale: float | None


def refine(
    problem: Problem,
    theta0: NDArray[np.float64],
    *,
    loss: str = "linear",
    f_scale: float | None = None,
    rows_problem: Problem | None = None,
    polish: str = "nelder-mead",
) -> RefineResult:
    """Polish one optimum on the projected objective; robust loss by least_squares.

    ``problem`` is the (cell-level) problem for the projected objective; ``rows_problem`` the
    run-level one used for a robust loss (each run its own residual). ``polish``:
    ``"nelder-mead"`` (derivative-free, to 1e-8 in the shapes) or ``"levenberg-marquardt"``
    (:func:`fits.estimate._search.levenberg_marquardt`: a few Gauss–Newton steps, for starts
    already next to the optimum, such as warm starts).
    """
    from scipy.optimize import least_squares

    model = problem.model
    lo, hi = model.lo, model.hi
    zero = np.zeros(1, dtype=int)

    def phi(t: NDArray[np.float64]) -> float:
        return float(problem.objective(np.clip(t, lo, hi)[None], zero)[0])

    f0 = phi(theta0)
    if polish == "levenberg-marquardt":
        found, value = levenberg_marquardt(problem, theta0[None], zero, lo, hi)
        better = bool(value[0] <= f0)
        theta = np.clip(found[0] if better else theta0, lo, hi)
        success, message, nfev = True, "Levenberg-Marquardt polish from a warm start", 0
    else:
        res = bounded_nelder_mead(
            phi,
            theta0,
            lo,
            hi,
            xatol=1e-8,
            fatol=1e-11 * max(abs(f0), 1e-300),
            maxiter=400 * len(theta0),
            adaptive=model.n_shape > 2,
            initial_simplex=theta0 + np.vstack([np.zeros(len(theta0)), 1e-4 * np.eye(len(theta0))]),
        )
        theta = np.clip(res.x if res.fun <= f0 else theta0, lo, hi)
        success, message, nfev = bool(res.success), str(res.message), int(res.nfev)
    amps, rss = problem.solve(theta[None], zero)
    cost = float(rss[0]) / 2.0
    if loss != "linear":
        rp = rows_problem if rows_problem is not None else problem
        resid0 = _residuals(rp, theta, amps[0])
        if f_scale is None:
            mad = float(np.median(np.abs(resid0 - np.median(resid0))))
            f_scale = 1.4826 * mad if mad > 0 else float(np.std(resid0)) or 1e-12
        x0 = np.concatenate([theta, amps[0]])
        lb = np.concatenate([lo, np.where(model.nonneg, 0.0, -np.inf)])
        ub = np.concatenate([hi, np.full(3, np.inf)])
        x0 = np.clip(x0, lb, ub)

        def fun(x: NDArray[np.float64]) -> NDArray[np.float64]:
            return _residuals(rp, x[: model.n_shape], x[model.n_shape :])

        ls = least_squares(
            fun,
            x0,
            bounds=(lb, ub),
            loss=loss,
            f_scale=f_scale,
            x_scale="jac",
            xtol=1e-12,
            ftol=1e-12,
            gtol=1e-12,
            max_nfev=2000,
        )
        theta, amp = ls.x[: model.n_shape], ls.x[model.n_shape :]
        amps = amp[None]
        rss = np.array([float(np.sum(fun(ls.x) ** 2))])
        success, message, nfev = bool(ls.success), str(ls.message), nfev + int(ls.nfev)
        cost = float(ls.cost)
    return RefineResult(theta, amps[0], float(rss[0]), cost, success, message, nfev, f_scale)


def bounded_nelder_mead(
    phi: Any,
    x0: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    *,
    xatol: float,
    fatol: float,
    maxiter: int,
    adaptive: bool = False,
    initial_simplex: NDArray[np.float64] | None = None,
) -> Any:
    """scipy's Nelder–Mead on ``phi`` inside the box [lo, hi] (the searches of the fits)."""
    from scipy.optimize import minimize

    options: dict[str, Any] = {
        "xatol": xatol,
        "fatol": fatol,
        "maxiter": maxiter,
        "adaptive": adaptive,
    }
    if initial_simplex is not None:
        options["initial_simplex"] = initial_simplex
    return minimize(
        phi, x0, method="Nelder-Mead", bounds=list(zip(lo, hi, strict=True)), options=options
    )


def _residuals(
    problem: Problem, theta: NDArray[np.float64], amps: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Weighted residuals sqrt(w)(y - f) of draw 0 of ``problem``."""
    q = problem.q if problem.q is None or problem.q.ndim == 1 else problem.q[0]
    K = problem.K if problem.K is None or problem.K.ndim == 1 else problem.K[0]
    w = problem.w if problem.w.ndim == 1 else problem.w[0]
    pred = problem.model.predict(theta[None], np.asarray(amps)[None], problem.d, problem.n, q, K)[0]
    return np.sqrt(w) * (problem.y[0] - pred)


def refusal(
    model: TradeoffModel,
    theta: NDArray[np.float64],
    amps: NDArray[np.float64],
    X: NDArray[np.float64],
    y_spread: float,
    *,
    edge_tol: float = 1e-3,
    amp_tol: float = 1e-6,
) -> NDArray[np.int_]:
    """Why each fit must be refused, as :class:`Refusal` values: ``OK``, ``ON_BOUND`` (a shape
    on its bound, which takes precedence) or ``VANISHED_AMPLITUDE``.

    ``theta`` (B, s), ``amps`` (B, 3), ``X`` (B, P, 3) the design at the optimum.
    """
    theta = np.atleast_2d(theta)
    width = model.hi - model.lo
    at_bound = ((theta - model.lo) < edge_tol * width) | ((model.hi - theta) < edge_tol * width)
    tiny = tiny_amplitudes(amps, X, y_spread, amp_tol=amp_tol).any(axis=1)
    code = np.full(len(theta), int(Refusal.OK), dtype=int)
    code[tiny] = Refusal.VANISHED_AMPLITUDE
    code[at_bound.any(axis=1)] = Refusal.ON_BOUND
    return code


def tiny_amplitudes(
    amps: NDArray[np.float64], X: NDArray[np.float64], y_spread: float, *, amp_tol: float = 1e-6
) -> NDArray[np.bool_]:
    """Whether the gap (A) and the extrapolation (B) terms are about zero: (B, 2).

    A term is about zero when its largest contribution |amplitude| max_P |column| is at most
    ``amp_tol`` times the spread of the responses; ``amps`` (B, 3), ``X`` (B, P, 3).
    """
    contrib = np.abs(np.atleast_2d(amps)[:, :2]) * np.nanmax(np.abs(X[..., :2]), axis=1)
    return contrib <= amp_tol * max(y_spread, 1e-12)
