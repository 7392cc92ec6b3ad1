"""The result of a tradeoff fit: :class:`FitResult`, its summary, and its JSON form.

``FitResult.to_dict()`` is JSON-safe and holds everything needed to redo the fit and to
recompute d*(n) at any budget with intervals (the runs, the configuration, the unrounded
parameters and the bootstrap draws); :func:`load_fit` rebuilds a :class:`FitResult` from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from fits.estimate._bootstrap import BootstrapDraws
from fits.estimate._interval import ConfidenceInterval, check_level, percentile_bounds
from fits.estimate._lack_of_fit import LackOfFit
from fits.estimate._model_free import ModelFreeDStar
from fits.estimate._varpro import Refusal
from fits.exceptions import RunsFileError
from fits.model._cells import FitData, prepare_data
from fits.model._dstar import Surfaces, dstar, make_surfaces, predict_test, shift_exponent
from fits.model._families import PARAM_DOC, TradeoffModel
from fits.results._selection import ModelSelection
from pacbound.exceptions import InvalidParameterError

__all__ = [
    "ConfidenceInterval",
    "DStarEstimate",
    "FitIntervals",
    "FitResult",
    "FitSummary",
    "draw_intervals",
    "load_fit",
]

FORMAT_VERSION = 2
"""Version of the ``fit.json`` form written by :meth:`FitResult.to_dict`. Version 2 holds every
interval as a :class:`ConfidenceInterval` dict (``low``, ``high``, ``level``, ``method``, ...)
under ``interval``; version 1 (flat ``low``/``high``) is still read."""


@dataclass(frozen=True)
class DStarEstimate:
    """d* at one budget.

    Attributes
    ----------
    n : float
        The budget.
    value : float
        d*(n) inside the observed difficulty range (the edge when not bracketed).
    interval : ConfidenceInterval or None
        Percentile interval over the bootstrap refits (None without a bootstrap).
    bracketed : bool
        False when the minimum sits on the edge of the observed difficulties: the data do not
        locate the optimum there, and the value is not an extrapolation.
    p_bracketed : float or None
        Share of bootstrap refits whose d* is bracketed.
    data_bracketed : bool or None
        Whether the data themselves bracket the minimum (the observed best difficulty is
        interior to the grid); "bracketed" is said only where both the curve and the data do.
    """

    n: float
    value: float
    interval: ConfidenceInterval | None
    bracketed: bool
    p_bracketed: float | None = None
    data_bracketed: bool | None = None

    @property
    def located(self) -> bool:
        """Bracketed by the fitted curve and, where known, by the data."""
        return self.bracketed and self.data_bracketed is not False

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "value": self.value,
            "interval": None if self.interval is None else self.interval.to_dict(),
            "bracketed": self.bracketed,
            "p_bracketed": self.p_bracketed,
            "data_bracketed": self.data_bracketed,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any], level: float | None = None) -> DStarEstimate:
        """Rebuild from :meth:`to_dict` output, or from a version-1 entry with flat
        ``low``/``high`` (then ``level`` is the fit's confidence level)."""
        if "interval" in obj:
            ci = None if obj["interval"] is None else ConfidenceInterval.from_dict(obj["interval"])
        else:
            ci = (
                None
                if obj.get("low") is None
                else ConfidenceInterval(obj["low"], obj["high"], level)
            )
        return cls(
            float(obj["n"]),
            float(obj["value"]),
            ci,
            bool(obj["bracketed"]),
            obj.get("p_bracketed"),
            obj.get("data_bracketed"),
        )

    def as_row(self) -> dict[str, Any]:
        """One flat table row: ``n``, ``value``, ``low``, ``high``, ``level``, ``bracketed``,
        ``p_bracketed`` (the interval ends None without a bootstrap)."""
        ci = self.interval
        return {
            "n": self.n,
            "value": self.value,
            "low": None if ci is None else ci.low,
            "high": None if ci is None else ci.high,
            "level": None if ci is None else ci.level,
            "bracketed": self.bracketed,
            "p_bracketed": self.p_bracketed,
            "data_bracketed": self.data_bracketed,
        }

    def __str__(self) -> str:
        ci = "" if self.interval is None else f" {self.interval}"
        if not self.bracketed:
            edge = " (edge, not bracketed)"
        elif self.data_bracketed is False:
            edge = " (curve interior, but the observed best is on the grid edge: not bracketed by the data)"
        else:
            edge = ""
        return f"d*(n={self.n:g}) = {self.value:.4g}{ci}{edge}"


@dataclass(frozen=True)
class FitIntervals:
    """A fit's bootstrap intervals at one confidence level (:meth:`FitResult.confidence_interval`).

    Attributes
    ----------
    level : float
    params : dict of str to ConfidenceInterval
        Percentile intervals of the parameters (natural scale).
    d_star : tuple of DStarEstimate
        d*(n) at the observed budgets with its interval at this level.
    shift_exponent : ConfidenceInterval or None
        Interval of the shift exponent (None when a draw's d* is not positive).
    """

    level: float
    params: dict[str, ConfidenceInterval]
    d_star: tuple[DStarEstimate, ...]
    shift_exponent: ConfidenceInterval | None

    def __str__(self) -> str:
        lines = [f"{self.level:.0%} bootstrap percentile intervals"]
        lines += [f"  {k:<6} [{v.low:.4g}, {v.high:.4g}]" for k, v in self.params.items()]
        for e in self.d_star:
            ci = "-" if e.interval is None else f"[{e.interval.low:.4g}, {e.interval.high:.4g}]"
            lines.append(f"  d*(n={e.n:g}) = {e.value:.4g} {ci}")
        if self.shift_exponent is not None:
            sh = self.shift_exponent
            lines.append(f"  shift exponent [{sh.low:.4g}, {sh.high:.4g}]")
        return "\n".join(lines)


def draw_intervals(
    model: TradeoffModel,
    draws: BootstrapDraws,
    d_draws: NDArray[np.float64],
    budgets: NDArray[np.float64],
    confidence_level: float,
) -> tuple[dict[str, ConfidenceInterval], list[ConfidenceInterval], ConfidenceInterval | None]:
    """Percentile intervals from bootstrap draws: of the parameters, of d* at each budget
    (``d_draws`` (D, nb)) and of the shift exponent (None when a draw's d* is not positive)."""
    level = check_level(confidence_level)
    nat = np.concatenate([np.exp(draws.theta), draws.amps], axis=1)
    lo, hi = percentile_bounds(nat, level)
    params = {
        k: ConfidenceInterval(float(a), float(b), level)
        for k, a, b in zip(model.param_names, lo, hi, strict=True)
    }
    d_lo, d_hi = percentile_bounds(d_draws, level)
    d_int = [ConfidenceInterval(float(a), float(b), level) for a, b in zip(d_lo, d_hi, strict=True)]
    shift = None
    sh = shift_exponent(d_draws, budgets)
    if np.isfinite(sh).all():
        a, b = percentile_bounds(sh, level)
        shift = ConfidenceInterval(float(a), float(b), level)
    return params, d_int, shift


@dataclass(frozen=True)
class FitSummary:
    """A printable summary with text and HTML renderings."""

    text: str
    html: str

    def as_text(self) -> str:
        return self.text

    def as_html(self) -> str:
        return self.html

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class FitResult:
    """A fitted tradeoff with d*(n), intervals, validation and model comparison.

    Attributes
    ----------
    model : TradeoffModel
        The model form, its reference difficulty and the bounds of its shape parameters.
    target : {"loss", "error"}
    params : dict of str to float
        Unrounded estimates (natural scale).
    intervals : dict of str to ConfidenceInterval
        Bootstrap percentile intervals at ``config["confidence_level"]`` (empty without a
        bootstrap); :meth:`confidence_interval` gives them at any level.
    covariance : ndarray or None
        Approximate covariance from the Jacobian of the run residuals (None when singular);
        the bootstrap intervals are the ones to report.
    nobs, ncells, nparams, nfree : int
        Runs, (d, n) cells, fitted parameters and ``nobs - nparams``.
    rss : float
        Weighted residual sum of squares over the runs.
    cost : float
        The optimiser's objective (``rss/2``, or the robust cost).
    llf, aicc, bic : float
        Gaussian log-likelihood and information criteria (noise variance counted).
    success : bool
    message : str
    d_star : tuple of DStarEstimate
        One per observed budget.
    d_star_method : {"closed form", "bounded search"}
    shift_exponent : float or None
        Slope of log d* on log n over the budgets (None when a d* is not positive).
    shift_interval : ConfidenceInterval or None
    p_increase : float or None
        Share of refits with d* at the largest budget above d* at the smallest.
    p_monotone : float or None
        Share of refits with d* non-decreasing across all budgets.
    verdict : str
    verdict_code : {"increases", "decreases", "inconclusive", "point estimate only"}
    comparison : tuple of dict
        AICc of this model and the baselines on one likelihood.
    cv : tuple of dict
        Cross-validation folds.
    config : dict
        Loss, f_scale, weights, grid, bounds, excluded runs, bootstrap, versions.
    lack_of_fit : LackOfFit or None
        The pure-error test of the model's form against the runs' own replicate noise.
    model_free : tuple of ModelFreeDStar
        The data's own d* per budget (observed best, its resampling probabilities, a local
        parabola with its interval, and whether the data bracket it).
    model_selection : ModelSelection or None
        With several model families: their AICc weights and the model-averaged d*(n) whose
        bootstrap refits choose the family each time.
    """

    model: TradeoffModel
    target: str
    params: dict[str, float]
    intervals: dict[str, ConfidenceInterval]
    covariance: NDArray[np.float64] | None
    nobs: int
    ncells: int
    nparams: int
    nfree: int
    rss: float
    cost: float
    llf: float
    aicc: float
    bic: float
    success: bool
    message: str
    d_star: tuple[DStarEstimate, ...]
    d_star_method: str
    shift_exponent: float | None
    shift_interval: ConfidenceInterval | None
    p_increase: float | None
    p_monotone: float | None
    verdict: str
    verdict_code: str
    comparison: tuple[dict[str, Any], ...]
    cv: tuple[dict[str, Any], ...]
    config: dict[str, Any]
    data: FitData = field(repr=False, compare=False)
    surfaces: Surfaces = field(repr=False, compare=False)
    draws: BootstrapDraws | None = field(default=None, repr=False, compare=False)
    lack_of_fit: LackOfFit | None = None
    model_free: tuple[ModelFreeDStar, ...] = ()
    model_selection: ModelSelection | None = None

    @property
    def forward_predictions(self) -> list[dict[str, Any]]:
        """The forward-chaining folds of the theory: fitted on the smaller budgets, each predicts
        the next one's d* (with its interval) and is compared with the observed best."""
        return [
            dict(r)
            for r in self.cv
            if r.get("scheme") == "forward" and r.get("model") == "theory" and r.get("status") == "ok"
        ]

    # ------------------------------------------------------------------ predictions
    @property
    def theta(self) -> NDArray[np.float64]:
        return self.model.split(self.params)[0]

    @property
    def amps(self) -> NDArray[np.float64]:
        return self.model.split(self.params)[1]

    def predict(self, d: Any, n: Any) -> NDArray[np.float64]:
        """Predicted test metric (training surface + fitted gap) at points ``d``, ``n``."""
        d, n = np.broadcast_arrays(np.asarray(d, float), np.asarray(n, float))
        out = predict_test(self.model, self.theta, self.amps, self.surfaces, d.ravel(), n.ravel())
        return out[0].reshape(d.shape)

    def predict_gap(self, d: Any, n: Any) -> NDArray[np.float64]:
        """Fitted gap r = L_test - L_train at points ``d``, ``n``."""
        d, n = np.broadcast_arrays(np.asarray(d, float), np.asarray(n, float))
        q = self.surfaces.train(d.ravel(), n.ravel()) if self.model.spec.uses_train_risk else None
        K = self.surfaces.K(d.ravel(), n.ravel()) if self.surfaces.K is not None else None
        return self.model.predict(self.theta, self.amps, d.ravel(), n.ravel(), q, K)[0].reshape(
            d.shape
        )

    def draw_surfaces(self) -> Surfaces | None:
        """The per-draw surfaces of the bootstrap (None without one)."""
        if self.draws is None:
            return None
        return make_surfaces(
            self.data,
            self.model,
            self.config["train_model"],
            self.draws.train_cells,
            self.draws.K_cells,
        )

    def predict_draws(self, d: Any, n: Any) -> NDArray[np.float64] | None:
        """Predicted test metric per bootstrap draw: (D, P) for points of shape (P,)."""
        surf = self.draw_surfaces()
        if surf is None or self.draws is None:
            return None
        return predict_test(
            self.model,
            self.draws.theta,
            self.draws.amps,
            surf,
            np.asarray(d, float),
            np.asarray(n, float),
        )

    def d_star_at(
        self, budgets: Any, confidence_level: float | None = None
    ) -> tuple[DStarEstimate, ...]:
        """d* at any budgets, with bootstrap intervals when the fit has draws.

        Budgets outside the observed range use the training surface of the nearest observed
        budget (the fitted gap itself extrapolates in n through the model). The intervals are
        at ``confidence_level`` (default: the fit's).
        """
        level = check_level(
            self.config["confidence_level"] if confidence_level is None else confidence_level
        )
        budgets = np.atleast_1d(np.asarray(budgets, dtype=float))
        value, br, _ = dstar(self.model, self.theta, self.amps, self.surfaces, budgets)
        lows = highs = p_br = None
        surf = self.draw_surfaces()
        if surf is not None and self.draws is not None:
            dd, bb, _ = dstar(self.model, self.draws.theta, self.draws.amps, surf, budgets)
            lows, highs = percentile_bounds(dd, level)
            p_br = bb.mean(axis=0)
        # the data's own bracketing is known at the observed budgets only
        data_status = {e.n: e.status == "bracketed" for e in self.model_free}
        return tuple(
            DStarEstimate(
                float(budgets[j]),
                float(value[0, j]),
                None
                if lows is None or highs is None
                else ConfidenceInterval(float(lows[j]), float(highs[j]), level),
                bool(br[0, j]),
                None if p_br is None else float(p_br[j]),
                data_status.get(float(budgets[j])),
            )
            for j in range(len(budgets))
        )

    def confidence_interval(self, confidence_level: float = 0.95) -> FitIntervals:
        """Bootstrap percentile intervals at ``confidence_level``, recomputed from the draws.

        The parameters' intervals are percentiles of the refitted parameters; d*(n) is
        recomputed for every draw at the observed budgets and its percentiles taken; the shift
        exponent likewise. At the fit's own level this reproduces :attr:`intervals`,
        :attr:`d_star` and :attr:`shift_interval` exactly.

        Parameters
        ----------
        confidence_level : float, default 0.95
            In (0, 1).

        Returns
        -------
        FitIntervals

        Raises
        ------
        InvalidParameterError
            A level outside (0, 1), or a fit without bootstrap draws.
        """
        level = check_level(confidence_level)
        surf = self.draw_surfaces()
        if surf is None or self.draws is None:
            raise InvalidParameterError(
                "`confidence_interval` needs the bootstrap draws; this fit has none (refit with "
                "n_resamples > 0, or load a fit.json written with its draws)."
            )
        budgets = np.array([e.n for e in self.d_star], dtype=float)
        dd, _, _ = dstar(self.model, self.draws.theta, self.draws.amps, surf, budgets)
        params, d_int, shift = draw_intervals(self.model, self.draws, dd, budgets, level)
        d_star = tuple(
            dataclasses.replace(e, interval=ci) for e, ci in zip(self.d_star, d_int, strict=True)
        )
        return FitIntervals(level, params, d_star, shift)

    # ------------------------------------------------------------------ reporting
    def summary(self) -> FitSummary:
        """Text and HTML summary: parameters, d*(n), shift, comparison, validation, verdict."""
        from fits.results._summary import render_html, render_text

        return FitSummary(render_text(self), render_html(self))

    def __str__(self) -> str:
        return self.summary().text

    def _repr_html_(self) -> str:
        return self.summary().html

    def to_dict(self, *, include_draws: bool = True) -> dict[str, Any]:
        """JSON-safe plain objects; keys ``model``, ``params``, ``d_star`` and the rest."""
        from fits.estimate._crossval import summarize_cv

        names = list(self.model.param_names)
        out: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "model": self.model.to_dict(),
            "target": self.target,
            "params": dict(self.params),
            "intervals": {k: v.to_dict() for k, v in self.intervals.items()},
            "param_doc": {k: PARAM_DOC[k] for k in names},
            "covariance": None
            if self.covariance is None
            else {"names": names, "matrix": self.covariance.tolist()},
            "fit": {
                "nobs": self.nobs,
                "ncells": self.ncells,
                "nparams": self.nparams,
                "nfree": self.nfree,
                "rss": self.rss,
                "cost": self.cost,
                "llf": self.llf,
                "aicc": self.aicc,
                "bic": self.bic,
                "success": self.success,
                "message": self.message,
            },
            "d_star": [d.to_dict() for d in self.d_star],
            "d_star_method": self.d_star_method,
            "shift_exponent": {
                "value": self.shift_exponent,
                "interval": None if self.shift_interval is None else self.shift_interval.to_dict(),
            },
            "p_increase": self.p_increase,
            "p_monotone": self.p_monotone,
            "verdict": {"code": self.verdict_code, "text": self.verdict},
            "lack_of_fit": None if self.lack_of_fit is None else self.lack_of_fit.to_dict(),
            "model_free": [e.to_dict() for e in self.model_free],
            "model_selection": None
            if self.model_selection is None
            else self.model_selection.to_dict(),
            "forward_predictions": self.forward_predictions,
            "comparison": [dict(r) for r in self.comparison],
            "cv": {"folds": [dict(r) for r in self.cv], "summary": summarize_cv(list(self.cv))},
            "config": dict(self.config),
            "data": {
                "runs": _records(self.data.runs),
                "cells": _records(self.data.cells),
            },
        }
        if include_draws and self.draws is not None:
            out["bootstrap"] = {
                "method": self.draws.method,
                "n_resamples": self.draws.n_resamples,
                "flagged_bound": int((self.draws.flags == Refusal.ON_BOUND).sum()),
                "flagged_amplitude": int((self.draws.flags == Refusal.VANISHED_AMPLITUDE).sum()),
                "theta": self.draws.theta.tolist(),
                "amps": self.draws.amps.tolist(),
                "train_cells": self.draws.train_cells.tolist(),
                "K_cells": None if self.draws.K_cells is None else self.draws.K_cells.tolist(),
                "flags": self.draws.flags.tolist(),
            }
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> FitResult:
        """Rebuild a result from :meth:`to_dict` output (e.g. a loaded ``fit.json``).

        Reads the current form and version 1 (flat ``low``/``high`` intervals, taken to be at
        the fit's confidence level).
        """
        model = TradeoffModel.from_dict(obj["model"])
        cfg = obj["config"]
        runs = pd.DataFrame(obj["data"]["runs"])
        data = prepare_data(
            runs,
            target=obj["target"],
            weights=cfg["weights"],
            complexity=model.spec.measured,
            min_budgets=1,
            max_bins=int(cfg.get("max_bins", 0)),  # files from before binning: none
        )
        surfaces = make_surfaces(data, model, cfg["train_model"])
        draws = None
        boot = obj.get("bootstrap")
        if boot:
            draws = BootstrapDraws(
                boot["method"],
                np.array(boot["theta"], float),
                np.array(boot["amps"], float),
                np.array(boot["train_cells"], float),
                None if boot.get("K_cells") is None else np.array(boot["K_cells"], float),
                np.array(boot["flags"], int),
            )
        level = cfg.get("confidence_level")
        shift = obj["shift_exponent"]
        if "interval" in shift:
            shift_int = (
                None
                if shift["interval"] is None
                else ConfidenceInterval.from_dict(shift["interval"])
            )
        else:  # version 1
            shift_int = (
                None
                if shift.get("low") is None
                else ConfidenceInterval(shift["low"], shift["high"], level)
            )
        cov = obj.get("covariance")
        fit = obj["fit"]
        return cls(
            model=model,
            target=obj["target"],
            params={k: float(v) for k, v in obj["params"].items()},
            intervals={
                k: ConfidenceInterval.from_dict({"level": level, **v})
                for k, v in obj["intervals"].items()
            },
            covariance=None if cov is None else np.array(cov["matrix"], float),
            nobs=fit["nobs"],
            ncells=fit["ncells"],
            nparams=fit["nparams"],
            nfree=fit["nfree"],
            rss=fit["rss"],
            cost=fit["cost"],
            llf=fit["llf"],
            aicc=_num(fit["aicc"]),
            bic=_num(fit["bic"]),
            success=fit["success"],
            message=fit["message"],
            d_star=tuple(DStarEstimate.from_dict(d, level) for d in obj["d_star"]),
            d_star_method=obj["d_star_method"],
            shift_exponent=shift["value"],
            shift_interval=shift_int,
            p_increase=obj["p_increase"],
            p_monotone=obj["p_monotone"],
            verdict=obj["verdict"]["text"],
            verdict_code=obj["verdict"]["code"],
            comparison=tuple(obj["comparison"]),
            cv=tuple(obj["cv"]["folds"]),
            config=cfg,
            data=data,
            surfaces=surfaces,
            draws=draws,
            lack_of_fit=None
            if obj.get("lack_of_fit") is None
            else LackOfFit.from_dict(obj["lack_of_fit"]),
            model_free=tuple(ModelFreeDStar.from_dict(e) for e in obj.get("model_free", ())),
            model_selection=None
            if obj.get("model_selection") is None
            else ModelSelection.from_dict(obj["model_selection"]),
        )


def _num(x: Any) -> float:
    return float("inf") if x is None else float(x)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict("records"):
        clean = {}
        for k, v in row.items():
            if v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                clean[k] = None
            elif isinstance(v, np.generic):
                clean[k] = v.item()
            else:
                clean[k] = v
        out.append(clean)
    return out


def load_fit(path: str | os.PathLike[str]) -> FitResult:
    """Load a ``fit.json`` written by ``tradeoff fit`` (or a folder holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "fit.json"
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunsFileError(f"{p}: no such fit file.") from None
    except json.JSONDecodeError as exc:
        raise RunsFileError(f"{p}: not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    for key in ("model", "params", "d_star", "config", "data"):
        if key not in obj:
            raise RunsFileError(f"{p}: field `{key}` is missing; not a fit.json of `tradeoff fit`.")
    version = obj.get("format_version")
    if version not in (1, FORMAT_VERSION):
        raise RunsFileError(
            f"{p}: `format_version` is {version!r}; this version of fits reads 1 and "
            f"{FORMAT_VERSION}. Refit with `tradeoff fit`."
        )
    try:
        return FitResult.from_dict(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise RunsFileError(f"{p}: malformed fit file ({exc!r}).") from None
