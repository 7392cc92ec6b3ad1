"""Validation over budgets: leave-one-budget-out and forward chaining.

Each fold refits the model (and its own small bootstrap) on some budgets and predicts a held-out
budget. The held-out runs' training metric is the known offset, as in the fit itself, so the
prediction of the test metric at a held-out cell is ``train_mean + r_hat(d, n)``. Reported per
fold: mean absolute error and signed bias (prediction minus observation) over the held-out
cells; the predicted d* with its percentile interval; the observed best difficulty at the
held-out budget (the cell with the lowest mean test metric); whether it falls in the interval;
and whether the observed difficulty nearest to the predicted d* is the observed best. Baselines
that can predict an unseen budget (pooled quadratic, separable) are scored on the same folds.
Forward chaining (the OLMo-core "rollout") trains on the smallest budgets and predicts the next.

A fold's data differ from the full data by one budget or a few, so its optimum lies next to the
full fit's: given that optimum, each fold starts there and at its neighbours one grid spacing
away, and polishes by Levenberg–Marquardt (a handful of refits instead of the whole grid, its
restarts and Nelder–Mead); its bootstrap refits start from the fold's optimum.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fits.exceptions import FitError
from fits.model._cells import CellSurface, FitData
from fits.model._dstar import Surfaces, dstar
from fits.model._families import TradeoffModel

__all__ = ["cross_validate", "summarize_cv"]


def _folds(budgets: NDArray[np.float64]) -> list[tuple[str, list[float], float]]:
    b = [float(x) for x in budgets]
    folds = [("leave-one-budget-out", [x for x in b if x != held], held) for held in b]
    folds += [("forward", b[:j], b[j]) for j in range(2, len(b))]
    return folds


def _held_surface(data: FitData, held: float) -> tuple[Surfaces, Any]:
    cells = data.cells[data.cells["n"] == held]
    d = cells["d"].to_numpy(float)
    train = cells["train_mean"].to_numpy(float)
    surf = CellSurface(d, np.array([held]), train[:, None])
    K = None
    if data.complexity_column is not None:
        K = CellSurface(d, np.array([held]), cells["K_mean"].to_numpy(float)[:, None], log=True)
    return Surfaces(surf, False, K), cells


def _prediction_scores(
    predicted: NDArray[np.float64],
    observed: NDArray[np.float64],
    d_held: NDArray[np.float64],
    dstar_pred: float,
    d_obs: float,
) -> dict[str, Any]:
    """MAE and signed bias of a held-out prediction, its d*, and whether the observed
    difficulty nearest to that d* is the observed best."""
    err = predicted - observed
    nearest = float(d_held[int(np.argmin(np.abs(d_held - dstar_pred)))])
    return {
        "status": "ok",
        "mae": float(np.mean(np.abs(err))),
        "bias": float(np.mean(err)),
        "dstar_pred": float(dstar_pred),
        "nearest_bin_match": nearest == d_obs,
    }


def cross_validate(
    data: FitData,
    model: TradeoffModel,
    *,
    loss: str,
    f_scale: float | None,
    grid: int | None,
    n_resamples: int,
    bootstrap: str,
    confidence_level: float,
    rng: np.random.Generator,
    baselines: bool = True,
    on_fold: Callable[[str], None] | None = None,
    start: NDArray[np.float64] | None = None,
) -> list[dict[str, Any]]:
    """Rows of per-fold validation metrics (see module docstring).

    ``start``: the full data's optimal shapes; each fold's fit is then warm-started there (and
    at its neighbours one grid spacing away) instead of searching the whole grid, which is the
    cost of cross-validation on many cells. Without it every fold searches the grid.
    """
    from fits.estimate._baselines import pooled_quadratic, separable
    from fits.estimate._core import fit_core

    alpha = 1.0 - confidence_level
    rows: list[dict[str, Any]] = []
    folds = _folds(data.n_levels)
    for k, (scheme, train_b, held) in enumerate(folds):
        if on_fold is not None:
            on_fold(f"cross-validation fold {k + 1}/{len(folds)}")
        surfaces, cells = _held_surface(data, held)
        d_held = cells["d"].to_numpy(float)
        n_held = np.full(len(d_held), held)
        train_held = cells["train_mean"].to_numpy(float)
        obs = cells["test_mean"].to_numpy(float)
        d_obs = float(d_held[int(np.argmin(obs))])
        base = {"scheme": scheme, "held_out_n": held, "train_budgets": train_b, "dstar_obs": d_obs}
        sub = data.subset(train_b)
        fold_model = model
        try:
            if sub.n_cells <= model.n_shape + 3:
                raise FitError(f"{sub.n_cells} cells for {model.n_shape + 3} parameters")
            core = fit_core(fold_model, sub, loss=loss, f_scale=f_scale, grid=grid, start=start)
        except FitError as exc:
            rows.append({**base, "model": "theory", "status": f"not fitted: {exc}"})
            continue
        q = surfaces.train(d_held, held) if model.spec.uses_train_risk else None
        Kh = surfaces.K(d_held, held) if surfaces.K is not None else None
        pred = (
            train_held
            + fold_model.predict(core.theta[None], core.amps[None], d_held, n_held, q, Kh)[0]
        )
        d_hat, _, _ = dstar(fold_model, core.theta, core.amps, surfaces, np.array([held]))
        row = {
            **base,
            "model": "theory",
            **_prediction_scores(pred, obs, d_held, float(d_hat[0, 0]), d_obs),
            # the held-out budget's best test metric: predicted (lowest predicted cell) and seen
            "test_pred_best": float(pred.min()),
            "test_obs_best": float(obs.min()),
        }
        if n_resamples:
            draws = core.bootstrap(
                sub, n_resamples=n_resamples, method=bootstrap, rng=rng, loss=loss, grid=grid
            )
            dd, _, _ = dstar(fold_model, draws.theta, draws.amps, surfaces, np.array([held]))
            lo, hi = np.quantile(dd[:, 0], [alpha / 2, 1 - alpha / 2])
            # prediction interval of the best cell mean: the refits' predicted minimum plus the
            # noise of a cell mean (pure-error variance of the fitted budgets over the cell's m)
            q_d = surfaces.train(d_held, held)[None] if model.spec.uses_train_risk else None
            pred_draws = train_held + fold_model.predict(
                draws.theta, draws.amps, d_held, n_held, q_d, Kh
            )
            m_best = float(cells["m"].to_numpy(float)[int(np.argmin(obs))])
            noise = rng.standard_normal(len(pred_draws)) * np.sqrt(_pure_error(sub) / m_best)
            t_lo, t_hi = np.quantile(pred_draws.min(axis=1) + noise, [alpha / 2, 1 - alpha / 2])
            row.update(
                dstar_low=float(lo),
                dstar_high=float(hi),
                in_interval=bool(lo - 1e-9 <= d_obs <= hi + 1e-9),
                test_low=float(t_lo),
                test_high=float(t_hi),
                test_in_interval=bool(t_lo <= obs.min() <= t_hi),
            )
            row["nearest_bin_match"] = row.pop("nearest_bin_match")  # last, as in baseline rows
        rows.append(row)
        if baselines:
            for maker in (pooled_quadratic, lambda s: separable(s, model)):
                try:
                    bl = maker(sub)
                except (FitError, np.linalg.LinAlgError) as exc:  # pragma: no cover - defensive
                    rows.append({**base, "model": "baseline", "status": f"not fitted: {exc}"})
                    continue
                pb = train_held + bl.predict(d_held, n_held)
                dv, _ = bl.dstar(surfaces, np.array([held]), *model.d_range)
                rows.append(
                    {
                        **base,
                        "model": bl.name,
                        **_prediction_scores(pb, obs, d_held, float(dv[0]), d_obs),
                    }
                )
    return rows


def _pure_error(data: FitData) -> float:
    """The pooled within-cell variance of the test metric (0 without replicates)."""
    dev = data.test - data.cells["test_mean"].to_numpy(float)[data.cell_of_run]
    dof = data.n_runs - data.n_cells
    return float(np.sum(dev**2) / dof) if dof > 0 else 0.0


def summarize_cv(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean MAE, bias and d* hit rates per (scheme, model)."""
    out = []
    keys = sorted({(r["scheme"], r["model"]) for r in rows})
    for scheme, model in keys:
        sel = [
            r for r in rows if r["scheme"] == scheme and r["model"] == model and r["status"] == "ok"
        ]
        total = sum(1 for r in rows if r["scheme"] == scheme and r["model"] == model)
        entry: dict[str, Any] = {
            "scheme": scheme,
            "model": model,
            "folds": total,
            "fitted": len(sel),
        }
        if sel:
            entry["mae"] = float(np.mean([r["mae"] for r in sel]))
            entry["bias"] = float(np.mean([r["bias"] for r in sel]))
            entry["nearest_bin_match"] = float(np.mean([r["nearest_bin_match"] for r in sel]))
            hits = [r["in_interval"] for r in sel if "in_interval" in r]
            entry["dstar_in_interval"] = float(np.mean(hits)) if hits else None
        out.append(entry)
    return out
