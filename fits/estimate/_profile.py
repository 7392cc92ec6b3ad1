r"""Profile-likelihood intervals for the shape parameters of a fitted tradeoff.

For a shape parameter :math:`\theta_j` (an exponent g or b, a rate a, the budget exponent nu of
``rate="free"``, the scale k), the profile is the least weighted residual sum of squares with
:math:`\theta_j` held at a value v and every other parameter refitted (the other shapes by
Nelder–Mead, warm-started along the profile; the amplitudes exactly, by variable projection):
:math:`\mathrm{RSS}_p(v) = \min_{\theta_{-j}, \beta} \mathrm{RSS}`. With the noise variance
unknown, v lies in the :math:`1-\alpha` interval when the F statistic

.. math::

    F(v) = \frac{\mathrm{RSS}_p(v) - \mathrm{RSS}_{\min}}{\mathrm{RSS}_{\min} / (N - P)}

is below the :math:`1-\alpha` quantile of :math:`F_{1, N-P}` (N runs, P fitted parameters): the
test of ``lmfit.conf_interval``. The interval ends are found by walking out from the estimate
on the parameter's log scale and solving :math:`P(F_{1,N-P} \le F(v)) = 1-\alpha` by Brent's
method between the last two points; an end that the profile does not reach before the
parameter's bound is reported as open at that bound.

These intervals follow the likelihood's shape instead of resampling; they complement the
bootstrap percentile intervals (which also carry the noise of the weights and of the measured
complexities, and give d*(n)). For ``rate="free"`` the interval of nu answers the theory's
question directly: does it cover 1/2? Exact for the linear loss only (the cell-mean problem is
then the run-level least squares); robust fits are refused.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from fits.estimate._core import cell_problem
from fits.estimate._interval import PROFILE, ConfidenceInterval
from fits.estimate._varpro import bounded_nelder_mead
from pacbound.exceptions import InvalidParameterError

__all__ = ["ParameterProfile", "ProfileResult", "profile_intervals"]

_ZERO = np.zeros(1, dtype=int)


@dataclass(frozen=True)
class ParameterProfile:
    r"""The profile likelihood of one shape parameter and the interval it gives.

    Attributes
    ----------
    name : str
    estimate : float
        The fitted value (natural scale).
    interval : ConfidenceInterval
        The profile-likelihood interval (natural scale; method ``"profile likelihood"``), an
        end open at the parameter's bound where the profile stays inside up to the bound.
    values : tuple of float
        The values at which the profile was evaluated, ascending (natural scale).
    probabilities : tuple of float
        :math:`P(F_{1,N-P} \le F(v))` at those values (0 at the estimate; the interval is where
        it is below the level).
    """

    name: str
    estimate: float
    interval: ConfidenceInterval
    values: tuple[float, ...]
    probabilities: tuple[float, ...]

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (ends included)."""
        return self.interval.covers(value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "estimate": self.estimate,
            "interval": self.interval.to_dict(),
            "values": list(self.values),
            "probabilities": list(self.probabilities),
        }

    def __str__(self) -> str:
        return f"{self.name} = {self.estimate:.4g} {self.interval}"


@dataclass(frozen=True)
class ProfileResult:
    """Profile-likelihood intervals of a fit's shape parameters.

    Attributes
    ----------
    intervals : tuple of ParameterProfile
    level : float
        The confidence level.
    nobs, nfree : int
        Runs, and runs minus fitted parameters (the F test's second degrees of freedom).
    rss : float
        The fit's weighted residual sum of squares over the runs.
    weights : str
        The fit's weighting. Inverse-variance weights estimated from a few seeds per cell are
        treated as known, which makes the intervals too narrow (measured: 87% coverage of g at
        95% with 3 seeds per cell, against 95% unweighted); the bootstrap carries that noise.
    """

    intervals: tuple[ParameterProfile, ...]
    level: float
    nobs: int
    nfree: int
    rss: float
    weights: str = "none"

    def __getitem__(self, name: str) -> ParameterProfile:
        for interval in self.intervals:
            if interval.name == name:
                return interval
        raise KeyError(name)

    @property
    def table(self) -> pd.DataFrame:
        """The profile curves: one row per (parameter, value) with its F probability."""
        rows = [
            {"param": iv.name, "value": v, "probability": p, "level": self.level}
            for iv in self.intervals
            for v, p in zip(iv.values, iv.probabilities, strict=True)
        ]
        return pd.DataFrame(rows, columns=["param", "value", "probability", "level"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": f"{PROFILE}, F test on the weighted RSS (lmfit.conf_interval's)",
            "level": self.level,
            "nobs": self.nobs,
            "nfree": self.nfree,
            "rss": self.rss,
            "weights": self.weights,
            "intervals": {iv.name: iv.to_dict() for iv in self.intervals},
        }

    @property
    def caveat(self) -> str | None:
        """Why the intervals may be too narrow, or None."""
        if self.weights == "inverse-variance":
            return (
                "the inverse-variance weights are estimated from the seeds and treated as "
                "known here, which narrows these intervals (the bootstrap intervals carry it)"
            )
        return None

    def summary_html(self) -> str:
        """The intervals as an HTML table (for report.html)."""
        rows = "".join(
            f"<tr><td>{html.escape(iv.name)}</td><td>{iv.estimate:.4g}</td>"
            f"<td>{'&le;' if iv.interval.low_open else ''}{iv.interval.low:.4g}</td>"
            f"<td>{'&ge;' if iv.interval.high_open else ''}{iv.interval.high:.4g}</td></tr>"
            for iv in self.intervals
        )
        note = f"<p>Note: {html.escape(self.caveat)}.</p>" if self.caveat else ""
        return (
            f"<p>{self.level:.0%} profile-likelihood intervals: F test on the weighted residual "
            f"sum of squares with 1 and {self.nfree} degrees of freedom.</p>"
            "<table><tr><th>param</th><th>estimate</th><th>low</th><th>high</th></tr>"
            f"{rows}</table>{note}"
        )

    def chart(self) -> Any:
        """The profiles (F probability against each parameter, log scale) with the level."""
        import altair as alt

        frame = self.table
        base = alt.Chart(frame)
        line = base.mark_line(point=True).encode(
            x=alt.X("value:Q", scale=alt.Scale(type="log", nice=False), title="parameter value"),
            y=alt.Y("probability:Q", title="P(F <= F(value))", scale=alt.Scale(domain=[0, 1])),
        )
        rule = base.mark_rule(strokeDash=[4, 4], color="firebrick").encode(y="mean(level):Q")
        return (
            alt.layer(line, rule, data=frame)
            .properties(width=220, height=160)
            .facet(facet=alt.Facet("param:N", title=None), columns=3)
            .resolve_scale(x="independent")
            .properties(title=f"Profile likelihood ({self.level:.0%} level dashed)")
        )

    def __str__(self) -> str:
        head = (
            f"Profile-likelihood intervals ({self.level:.0%}; F test with 1 and {self.nfree} "
            "degrees of freedom)"
        )
        lines = [head, f"  {'param':<6} {'estimate':>10} {'low':>11} {'high':>11}"]
        for iv in self.intervals:
            ci = iv.interval
            low = f"{'<=' if ci.low_open else ''}{ci.low:.4g}"
            high = f"{'>=' if ci.high_open else ''}{ci.high:.4g}"
            note = ""
            if iv.name == "nu":
                note = "  covers 1/2 (the theory's rate)" if iv.covers(0.5) else "  excludes 1/2"
            lines.append(f"  {iv.name:<6} {iv.estimate:>10.4g} {low:>11} {high:>11}{note}")
        if any(iv.interval.low_open or iv.interval.high_open for iv in self.intervals):
            lines.append("  (<= / >=: the profile stays inside the interval up to the bound)")
        if self.caveat:
            lines.append(f"  note: {self.caveat}")
        return "\n".join(lines)


def profile_intervals(
    result: Any,
    params: Iterable[str] | None = None,
    *,
    level: float | None = None,
    steps: int = 24,
) -> ProfileResult:
    """Profile-likelihood intervals of the shape parameters of a fitted tradeoff.

    Parameters
    ----------
    result : FitResult
        A fit of :func:`fits.fit_tradeoff` with the linear loss (its data attached).
    params : iterable of str, optional
        Shape parameters to profile (default: all of the model's).
    level : float, optional
        Confidence level in (0, 1) (default: the fit's ``confidence_level``).
    steps : int, default 24
        Most steps of the walk from the estimate towards each bound (log scale, growing from
        half a standard error); the ends are then solved between the last two steps.

    Returns
    -------
    ProfileResult

    Raises
    ------
    InvalidParameterError
        A robust loss, an unknown parameter name, a level outside (0, 1), fewer runs than
        parameters plus one.

    Examples
    --------
    >>> import fits  # doctest: +SKIP
    >>> fit = fits.fit_tradeoff(runs, model="power", rate="free")  # doctest: +SKIP
    >>> print(fits.profile_intervals(fit))  # doctest: +SKIP
    """
    from scipy.stats import f as f_dist

    loss = result.config.get("loss", "linear")
    if loss != "linear":
        raise InvalidParameterError(
            f"profile intervals need a fit with loss 'linear' (least squares); got {loss!r}. "
            "Use the bootstrap intervals of the robust fit."
        )
    model = result.model
    names = list(model.shape_names) if params is None else list(params)
    unknown = [n for n in names if n not in model.shape_names]
    if unknown or not names:
        raise InvalidParameterError(
            f"`params` must name shape parameters of this model {list(model.shape_names)}; "
            f"got {unknown or names!r}."
        )
    level = float(result.config.get("confidence_level", 0.95) if level is None else level)
    if not 0.0 < level < 1.0:
        raise InvalidParameterError(f"`level` must be in (0, 1); got {level!r}.")
    if result.nfree < 1:
        raise InvalidParameterError(
            f"profile intervals need more runs than parameters; got {result.nobs} runs for "
            f"{result.nparams} parameters."
        )
    if not isinstance(steps, int) or steps < 2:
        raise InvalidParameterError(f"`steps` must be an integer >= 2; got {steps!r}.")
    problem = cell_problem(model, result.data)
    theta_hat = np.asarray(result.theta, dtype=float)
    rss_cells_min = float(problem.objective(theta_hat[None], _ZERO)[0])
    scale = result.rss / result.nfree

    def probability(rss_cells: float) -> float:
        excess = max(rss_cells - rss_cells_min, 0.0)
        return float(f_dist.cdf(excess / scale, 1, result.nfree)) if scale > 0 else 1.0

    intervals = tuple(
        _profile_one(
            problem,
            model,
            theta_hat,
            model.shape_names.index(name),
            probability,
            level,
            steps,
            _log_scale_error(result, name),
        )
        for name in names
    )
    weights = str(result.config.get("weights", "none"))
    return ProfileResult(
        intervals, level, int(result.nobs), int(result.nfree), float(result.rss), weights
    )


def _log_scale_error(result: Any, name: str) -> float | None:
    """Standard error of log(param) from the Jacobian covariance (None when unavailable)."""
    cov = result.covariance
    if cov is None:
        return None
    i = list(result.model.param_names).index(name)
    var, value = float(cov[i, i]), float(result.params[name])
    if not (math.isfinite(var) and var > 0 and value > 0):
        return None
    return math.sqrt(var) / value


def _profile_one(
    problem: Any,
    model: Any,
    theta_hat: NDArray[np.float64],
    j: int,
    probability: Any,
    level: float,
    steps: int,
    log_se: float | None,
) -> ParameterProfile:
    """Walk from the estimate towards each bound in growing steps (half a standard error on
    the log scale, times 1, 2, 3, 4.5, ...) until the F probability reaches the level, then
    solve for the crossing."""
    lo, hi = float(model.lo[j]), float(model.hi[j])
    others = [i for i in range(model.n_shape) if i != j]
    curve: dict[float, float] = {float(theta_hat[j]): 0.0}
    ends: list[tuple[float, bool]] = []
    for bound in (lo, hi):
        span = bound - float(theta_hat[j])
        first = 0.5 * log_se if log_se else abs(span) / steps
        warm = theta_hat[others].copy()
        prev_v = float(theta_hat[j])
        end: tuple[float, bool] | None = None
        offset = first
        for _ in range(steps):
            v = bound if offset >= abs(span) else float(theta_hat[j]) + math.copysign(offset, span)
            rss, warm = _profiled_rss(problem, model, theta_hat, j, v, others, warm)
            curve[v] = probability(rss)
            if curve[v] >= level:
                end = (_solve_end(problem, model, theta_hat, j, others, warm, probability, level,
                                  prev_v, v, curve), False)  # fmt: skip
                break
            if v == bound:
                break
            prev_v = v
            offset = max(offset * 1.5, offset + first) if offset > first else 2 * first
        ends.append(end if end is not None else (bound, True))
    values = sorted(curve)
    (low, low_open), (high, high_open) = ends
    return ParameterProfile(
        name=model.shape_names[j],
        estimate=math.exp(theta_hat[j]),
        interval=ConfidenceInterval(
            math.exp(low), math.exp(high), level, PROFILE, low_open, high_open
        ),
        values=tuple(math.exp(v) for v in values),
        probabilities=tuple(curve[v] for v in values),
    )


def _solve_end(
    problem: Any,
    model: Any,
    theta_hat: NDArray[np.float64],
    j: int,
    others: list[int],
    warm: NDArray[np.float64],
    probability: Any,
    level: float,
    inside: float,
    outside: float,
    curve: dict[float, float],
) -> float:
    """The crossing of the level between an inside and an outside point (Brent's method)."""
    from scipy.optimize import brentq

    def excess(v: float) -> float:
        rss, _ = _profiled_rss(problem, model, theta_hat, j, v, others, warm)
        curve[v] = probability(rss)
        return curve[v] - level

    if curve[inside] - level >= 0.0:  # numerically at the level already
        return inside
    return float(brentq(excess, inside, outside, xtol=1e-6, rtol=1e-8, maxiter=60))


def _profiled_rss(
    problem: Any,
    model: Any,
    theta_hat: NDArray[np.float64],
    j: int,
    v: float,
    others: list[int],
    warm: NDArray[np.float64],
) -> tuple[float, NDArray[np.float64]]:
    """Least projected RSS with shape j at v (internal scale), refitting the other shapes."""
    theta = theta_hat.copy()
    theta[j] = v
    if not others:
        return float(problem.objective(theta[None], _ZERO)[0]), warm
    lo, hi = model.lo[others], model.hi[others]

    def phi(t: NDArray[np.float64]) -> float:
        full = theta.copy()
        full[others] = np.clip(t, lo, hi)
        value = float(problem.objective(full[None], _ZERO)[0])
        return value if math.isfinite(value) else 1e300

    best_x, best_f = warm, math.inf
    starts = [warm] if np.array_equal(warm, theta_hat[others]) else [warm, theta_hat[others]]
    for start in starts:  # warm start along the profile, and the optimum's
        x0 = np.clip(start, lo, hi)
        res = bounded_nelder_mead(
            phi,
            x0,
            lo,
            hi,
            xatol=1e-7,
            fatol=1e-11 * max(abs(phi(x0)), 1e-300),
            maxiter=600 * len(others),
        )
        if res.fun < best_f:
            best_x, best_f = np.clip(res.x, lo, hi), float(res.fun)
    return best_f, best_x
