"""How far a base-centred certificate is from non-vacuous: the KL a certificate below guessing allows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fits.experiments import nonvacuous_headroom
from pacbound import kl_bound
from pacbound.exceptions import InvalidParameterError

GUESS = 6.0 / 7.0
DELTA = 0.05
SIGMAS = (1e-3, 1e-2, 1e-1)


def _frame(n: int, kls, risks, means=None, run_id: str = "r0") -> pd.DataFrame:
    means = risks if means is None else means
    return pd.DataFrame(
        {
            "run_id": run_id,
            "budget_mode": "epochs",
            "n": n,
            "difficulty": 2.0,
            "seed": 0,
            "sigma": SIGMAS[: len(kls)],
            "kl": kls,
            "gibbs_mean": means,
            "q_cert": risks,
        }
    )


def _certificate(risk: float, kl: float, n: int, grid: int) -> float:
    """The theory's in-distribution certificate (δ/2 to the PAC-Bayes step, union over σ)."""
    return float(kl_bound(risk, kl, n, DELTA / 2, union={"sigma grid": grid}).value)


def test_the_allowed_kl_puts_the_certificate_exactly_at_guessing():
    frame = _frame(1024, [5e4, 900.0, 9.0], [0.1, 0.3, 0.95], means=[0.05, 0.2, 0.9])
    row = nonvacuous_headroom(frame, guess_error=GUESS, delta=DELTA).iloc[0]
    # the smallest ratio over the σ with room: σ = 1e-2 (900 nats) beats σ = 1e-3 (5e4 nats);
    # σ = 1e-1 has no room (its certified risk 0.95 is above guessing)
    assert row["sigma"] == 1e-2 and row["kl"] == 900.0
    assert row["kl_allowed"] > 0
    assert _certificate(0.3, row["kl_allowed"], 1024, 3) == pytest.approx(GUESS, rel=1e-9)
    assert row["kl_factor"] == pytest.approx(900.0 / row["kl_allowed"], rel=1e-12)
    # with the Monte-Carlo mean in place of the certified risk there is more room
    assert row["kl_allowed_exact"] > row["kl_allowed"]
    assert row["kl_factor_exact"] < row["kl_factor"]


def test_no_room_at_any_sigma_is_an_infinite_factor():
    frame = _frame(64, [1e6, 1e4, 100.0], [0.9, 0.97, 1.0], means=[0.5, 0.6, 1.0])
    row = nonvacuous_headroom(frame, guess_error=GUESS, delta=DELTA).iloc[0]
    assert math.isinf(row["kl_factor"]) and math.isnan(row["sigma"]) and math.isnan(row["kl"])
    assert row["kl_allowed"] == 0.0
    # the exact Gibbs risk (0.5) leaves room, so that factor is finite
    assert math.isfinite(row["kl_factor_exact"])


def test_grid_points_without_a_gibbs_estimate_are_skipped():
    frame = _frame(256, [1e3, 10.0, 0.1], [0.2, float("nan"), float("nan")])
    row = nonvacuous_headroom(frame, guess_error=GUESS, delta=DELTA).iloc[0]
    assert row["sigma"] == 1e-3 and math.isfinite(row["kl_factor"])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(8, 5000),
    kls=st.lists(st.floats(0.0, 1e5), min_size=3, max_size=3),
    risks=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
)
def test_factor_at_most_one_iff_some_sigma_certifies_below_guessing(n, kls, risks):
    row = nonvacuous_headroom(_frame(n, kls, risks), guess_error=GUESS, delta=DELTA).iloc[0]
    certs = [_certificate(q, k, n, 3) for q, k in zip(risks, kls, strict=True)]
    # F <= 1 (up to rounding at the boundary) exactly when some σ's certificate is below B
    if any(c < GUESS - 1e-9 for c in certs):
        assert row["kl_factor"] <= 1.0 + 1e-9
    if all(c > GUESS + 1e-9 for c in certs):
        assert row["kl_factor"] > 1.0 - 1e-9


def test_one_row_per_run_on_the_reports_cached_theory():
    path = (
        Path(__file__).resolve().parents[2] / "paper/results/theory-calibrated-epochs/theory.json"
    )
    theory = json.loads(path.read_text())
    per_sigma = pd.DataFrame(theory["per_sigma"])
    out = nonvacuous_headroom(per_sigma, guess_error=GUESS, delta=theory["config"]["delta"])
    assert len(out) == per_sigma["run_id"].nunique() == len(theory["per_run"])
    # every run's base-centred certificate is vacuous there, so every factor exceeds 1
    vacuous = {r["run_id"] for r in theory["per_run"] if r["certificate"] >= GUESS}
    assert (out.set_index("run_id").loc[sorted(vacuous), "kl_factor"] > 1).all()
    assert np.isfinite(out["kl_factor_exact"]).sum() >= np.isfinite(out["kl_factor"]).sum()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"guess_error": 1.0, "delta": DELTA}, "guess_error"),
        ({"guess_error": GUESS, "delta": 0.0}, "delta"),
    ],
)
def test_bad_input(kwargs, match):
    frame = _frame(64, [1.0, 1.0, 1.0], [0.1, 0.1, 0.1])
    with pytest.raises(InvalidParameterError, match=match):
        nonvacuous_headroom(frame, **kwargs)
    with pytest.raises(InvalidParameterError, match="missing"):
        nonvacuous_headroom(frame.drop(columns=["q_cert"]), guess_error=GUESS, delta=DELTA)
