"""How far a base-centred certificate is from non-vacuous, in nats of KL.

The theory pipeline (:mod:`fits.experiments._theory`) certifies each run with the base-centred
Gaussian pair ``Q_σ = N(w_ft, σ²I)``, ``P_σ = N(w_base, σ²I)`` (the paper's base-relative
complexity) on a σ grid ``G`` fixed in advance. Its in-distribution certificate at σ is

.. math:: C_σ = \\mathrm{kl}^{-1}\\Big(\\hat q_σ, \\frac{\\mathrm{KL}_σ + c}{n}\\Big),
          \\qquad c = \\ln\\frac{\\xi(n)\\,|G|}{δ_{PB}},

with ``δ_PB = δ/2`` (the other half pays the Monte-Carlo step). ``C_σ`` is below the error of
guessing ``B`` exactly when ``KL_σ < KL^{max}_σ = n·kl(q̂_σ ‖ B) − c`` (kl⁻¹ is increasing in its
second argument), so a run's distance from a non-vacuous base-relative certificate is the factor

.. math:: F = \\min_{σ:\\, KL^{max}_σ > 0} \\mathrm{KL}_σ / KL^{max}_σ

by which its KL would have to shrink (``F ≤ 1``: already non-vacuous; ``F = ∞``: at every σ the
certified Gibbs risk q̂_σ is itself at or above guessing, so no KL is small enough). The same
factor with the Monte-Carlo mean Ȳ in place of q̂_σ (``exact`` columns) says how far the run is
when the Gibbs risk is known exactly, the limit of many posterior draws; it is not a
certificate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pacbound.exceptions import InvalidParameterError

__all__ = ["nonvacuous_headroom"]

_RUN_KEYS = ("run_id", "budget_mode", "n", "difficulty", "seed")


def _kl_allowed(risk: float, n: int, guess_error: float, delta_pb: float, grid: int) -> float:
    """``n·kl(risk ‖ B) − c``: the largest KL whose certificate is below ``B`` (≤ 0: none)."""
    from pacbound import kl_bernoulli, kl_bound

    if not (risk < guess_error):
        return -math.inf
    constant = float(kl_bound(risk, 0.0, n, delta_pb, union={"sigma grid": grid}).complexity) * n
    return n * float(kl_bernoulli(risk, guess_error)) - constant


def _factor(kl: np.ndarray, allowed: np.ndarray) -> tuple[float, int]:
    """The smallest KL / allowed over the grid points with allowed > 0, and its index."""
    ratio = np.where(allowed > 0, kl / np.where(allowed > 0, allowed, 1.0), np.inf)
    i = int(np.argmin(ratio))
    return float(ratio[i]), i


def nonvacuous_headroom(
    per_sigma: pd.DataFrame, *, guess_error: float, delta: float, grid: int | None = None
) -> pd.DataFrame:
    """Per run: by what factor its KL would have to shrink for a non-vacuous certificate.

    Parameters
    ----------
    per_sigma : DataFrame
        :attr:`TheoryResult.per_sigma` (or its ``theory.json`` records): one row per (run, σ)
        with run_id, budget_mode, n, difficulty, seed, sigma, kl, gibbs_mean, q_cert.
    guess_error : float in (0, 1)
        B, the error of guessing the answer (1 − 1/p for answers mod p).
    delta : float in (0, 1)
        The theory's total δ; half of it is the PAC-Bayes step's, as there.
    grid : int, optional
        |G|, the σ grid's size (default: the number of σ per run in ``per_sigma``).

    Returns
    -------
    DataFrame
        One row per run: the run keys, ``sigma`` (the σ of the smallest factor), ``kl`` and
        ``kl_allowed`` there, ``kl_factor`` (F; where no σ has q̂_σ < B: F = ∞, ``sigma`` and
        ``kl`` NaN, ``kl_allowed`` 0), and with Ȳ in place of q̂_σ: ``sigma_exact``,
        ``kl_allowed_exact``, ``kl_factor_exact``.
    """
    if not (0.0 < guess_error < 1.0):
        raise InvalidParameterError(f"`guess_error` must be in (0, 1); got {guess_error!r}.")
    if not (0.0 < delta < 1.0):
        raise InvalidParameterError(f"`delta` must be in (0, 1); got {delta!r}.")
    missing = {*_RUN_KEYS, "sigma", "kl", "gibbs_mean", "q_cert"} - set(per_sigma.columns)
    if missing:
        raise InvalidParameterError(
            f"`per_sigma` must have the theory's per-σ columns; missing {sorted(missing)}."
        )
    rows = []
    for keys, frame in per_sigma.groupby(list(_RUN_KEYS), sort=False):
        size = grid if grid is not None else len(frame)
        n = int(keys[2])
        kl = frame["kl"].to_numpy(dtype=np.float64)
        row = dict(zip(_RUN_KEYS, keys, strict=True))
        for risk_col, suffix in (("q_cert", ""), ("gibbs_mean", "_exact")):
            allowed = np.array(
                [
                    _kl_allowed(float(r), n, guess_error, delta / 2.0, size)
                    if math.isfinite(r)
                    else -math.inf
                    for r in frame[risk_col].to_numpy(dtype=np.float64)
                ]
            )
            factor, i = _factor(kl, allowed)
            room = math.isfinite(factor)
            row[f"sigma{suffix}"] = float(frame["sigma"].iloc[i]) if room else math.nan
            if not suffix:
                row["kl"] = float(kl[i]) if room else math.nan
            row[f"kl_allowed{suffix}"] = float(allowed[i]) if room else 0.0
            row[f"kl_factor{suffix}"] = factor
        rows.append(row)
    return pd.DataFrame(rows)
