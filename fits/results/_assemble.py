"""Assemble a :class:`~fits.FitResult` from the pieces of a fit: intervals, verdict, comparison.

The verdict answers "does d* increase with n?" from the bootstrap refits: ``increases`` when
P(d* at the largest budget > d* at the smallest) reaches the confidence level, ``decreases`` when
it is at most one minus the level, ``inconclusive`` otherwise; every verdict quotes the numbers,
and names the budgets whose optimum sits on the edge of the observed difficulties.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from fits.estimate._bootstrap import BootstrapDraws
from fits.estimate._interval import ConfidenceInterval
from fits.estimate._lack_of_fit import LackOfFit
from fits.estimate._model_free import ModelFreeDStar
from fits.model._cells import FitData
from fits.model._dstar import Surfaces, shift_exponent
from fits.model._families import TradeoffModel
from fits.results._result import DStarEstimate, FitResult, draw_intervals

__all__ = ["assemble_result", "verdict"]


def assemble_result(
    model: TradeoffModel,
    data: FitData,
    core: Any,
    surfaces: Surfaces,
    point: tuple[NDArray[np.float64], NDArray[np.bool_], str],
    draws: BootstrapDraws | None,
    draw_dstar: tuple[Any, Any],
    covariance: NDArray[np.float64] | None,
    baselines: list[Any],
    cv_rows: list[dict[str, Any]],
    config: dict[str, Any],
    *,
    lack_of_fit: LackOfFit | None = None,
    model_free: list[ModelFreeDStar] | None = None,
) -> FitResult:
    """Put the pieces of :func:`fits.fit_tradeoff` together (intervals, verdict, comparison)."""
    from fits.estimate._baselines import gaussian_llf, information_criteria

    budgets = data.n_levels
    d_hat, br_hat, method = point
    params = core.params
    intervals: dict[str, ConfidenceInterval] = {}
    d_int: list[ConfidenceInterval | None] = [None] * len(budgets)
    p_br = None
    shift_int = p_inc = p_mono = None
    shift_pt = shift_exponent(d_hat[None], budgets)[0]
    if draws is not None:
        dd, bb = draw_dstar
        intervals, d_ints, shift_int = draw_intervals(
            model, draws, dd, budgets, config["confidence_level"]
        )
        d_int = list(d_ints)
        p_br = bb.mean(axis=0)
        tol = 1e-9 * (model.d_range[1] - model.d_range[0])
        p_inc = float(np.mean(dd[:, -1] > dd[:, 0] + tol))
        p_mono = float(
            np.mean((np.diff(dd, axis=1) >= -tol).all(axis=1) & (dd[:, -1] > dd[:, 0] + tol))
        )
    d_star = tuple(
        DStarEstimate(
            float(budgets[j]),
            float(d_hat[j]),
            d_int[j],
            bool(br_hat[j]),
            None if p_br is None else float(p_br[j]),
            None if not model_free else model_free[j].status == "bracketed",
        )
        for j in range(len(budgets))
    )
    resid = data.r - core.fitted_cells[data.cell_of_run]
    llf = gaussian_llf(resid, data.w)
    nparams = len(model.param_names)
    ic = information_criteria(llf, data.n_runs, nparams)
    comparison = _comparison(model, data, llf, ic, nparams, baselines, surfaces, cv_rows)
    code, text = verdict(
        d_star,
        None if not np.isfinite(shift_pt) else float(shift_pt),
        shift_int,
        p_inc,
        data.target,
        config["confidence_level"],
        lack_of_fit,
    )
    return FitResult(
        model=model,
        target=data.target,
        params=params,
        intervals=intervals,
        covariance=covariance,
        nobs=data.n_runs,
        ncells=data.n_cells,
        nparams=nparams,
        nfree=data.n_runs - nparams,
        rss=core.rss,
        cost=core.cost,
        llf=llf,
        aicc=ic["aicc"],
        bic=ic["bic"],
        success=core.success,
        message=core.message,
        d_star=d_star,
        d_star_method=method,
        shift_exponent=None if not np.isfinite(shift_pt) else float(shift_pt),
        shift_interval=shift_int,
        p_increase=p_inc,
        p_monotone=p_mono,
        verdict=text,
        verdict_code=code,
        comparison=tuple(comparison),
        cv=tuple(cv_rows),
        config=config,
        data=data,
        surfaces=surfaces,
        draws=draws,
        lack_of_fit=lack_of_fit,
        model_free=tuple(model_free or ()),
    )


def _comparison(model, data, llf, ic, nparams, baselines, surfaces, cv_rows):  # type: ignore[no-untyped-def]
    rows = [
        {
            "model": "theory",
            "form": model.spec.label,
            "k": nparams + 1,
            "llf": llf,
            "aicc": ic["aicc"],
            "bic": ic["bic"],
            "d_star": None,
        }
    ]
    for bl in baselines:
        dv, db = bl.dstar(surfaces, data.n_levels, *model.d_range)
        rows.append(
            {
                "model": bl.name,
                "form": bl.note,
                "k": bl.n_params + 1,
                "llf": bl.llf,
                "aicc": bl.aicc,
                "bic": bl.bic,
                "d_star": [
                    {"n": float(n), "value": float(v), "bracketed": bool(b)}
                    for n, v, b in zip(data.n_levels, dv, db, strict=True)
                ],
            }
        )
    finite = [r["aicc"] for r in rows if np.isfinite(r["aicc"])]
    best = min(finite) if finite else np.nan
    for r in rows:
        r["delta_aicc"] = r["aicc"] - best if np.isfinite(r["aicc"]) else None
        lobo = [
            c["mae"]
            for c in cv_rows
            if c["model"] == r["model"]
            and c.get("status") == "ok"
            and c["scheme"] == "leave-one-budget-out"
        ]
        r["cv_mae_lobo"] = float(np.mean(lobo)) if lobo else None
    return rows


def verdict(
    d_star: tuple[DStarEstimate, ...],
    shift: float | None,
    shift_int: ConfidenceInterval | None,
    p_inc: float | None,
    target: str,
    level: float,
    lack_of_fit: LackOfFit | None = None,
) -> tuple[str, str]:
    """The honest one-paragraph answer to "does d* increase with n?", with the numbers.

    When the pure-error lack-of-fit test rejects the model's form, the answer opens with that:
    the fitted d*(n) is then the model's, not the data's, whatever the bootstrap says.
    """
    code, text = _shift_verdict(d_star, shift, shift_int, p_inc, target, level)
    if lack_of_fit is not None and lack_of_fit.rejected:
        head = (
            f"The theory's form does not describe these runs (lack of fit: "
            f"F({lack_of_fit.df[0]}, {lack_of_fit.df[1]}) = {lack_of_fit.statistic:.3g}, "
            f"{lack_of_fit.p_text} < {lack_of_fit.alpha:g}), so the d*(n) below is the "
            "model's, not the data's; see the data's own d* beside it. "
        )
        return code, head + text
    return code, text


def _shift_verdict(
    d_star: tuple[DStarEstimate, ...],
    shift: float | None,
    shift_int: ConfidenceInterval | None,
    p_inc: float | None,
    target: str,
    level: float,
) -> tuple[str, str]:
    first, last = d_star[0], d_star[-1]

    def fmt(e: DStarEstimate) -> str:
        ci = f" [{e.interval.low:.3g}, {e.interval.high:.3g}]" if e.interval is not None else ""
        edge = "" if e.bracketed else " (edge, not bracketed)"
        return f"{e.value:.3g}{ci} at n={e.n:g}{edge}"

    moves = f"d* goes from {fmt(first)} to {fmt(last)}"
    sh = ""
    if shift is not None:
        sh = f"; shift exponent d log d*/d log n = {shift:.3g}"
        if shift_int is not None:
            sh += f" [{shift_int.low:.3g}, {shift_int.high:.3g}]"
    unbr = [f"{e.n:g}" for e in d_star if not e.bracketed]
    data_edge = [f"{e.n:g}" for e in d_star if e.bracketed and e.data_bracketed is False]
    note = ""
    if unbr:
        note = (
            f" At n = {', '.join(unbr)} the fitted optimum sits on the edge of the observed "
            "difficulties, so the data do not locate it there."
        )
    if data_edge:
        note += (
            f" At n = {', '.join(data_edge)} the fitted curve puts d* inside the grid but the "
            "observed best difficulty is on its edge: the model, not the data, brackets it."
        )
    metric = "test loss" if target == "loss" else "test error"
    if p_inc is None:
        return "point estimate only", (
            f"{moves}{sh} (point estimates of the {metric} optimum; no bootstrap, so no "
            f"statement of confidence).{note}"
        )
    p = f"P(d* at n={last.n:g} > d* at n={first.n:g}) = {p_inc:.3f} over the bootstrap refits"
    if p_inc >= level:
        return "increases", f"d* increases with n: {moves}{sh}; {p}.{note}"
    if p_inc <= 1.0 - level:
        return "decreases", f"d* decreases with n, against the theory: {moves}{sh}; {p}.{note}"
    return "inconclusive", (
        f"The data do not show d* changing with n at the {level:.0%} level: {moves}{sh}; {p}.{note}"
    )
