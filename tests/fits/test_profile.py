"""Tests of fits.estimate._profile: profile-likelihood intervals of the shape parameters."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

import fits
from fits.cli.main import app
from fits.estimate._core import cell_problem
from fits.estimate._profile import ProfileResult, profile_intervals
from pacbound.exceptions import InvalidParameterError
from tests.fits._sim import TRUTH, simulate_runs


def _fit(seed: int = 0, noise: float = 0.01, **kwargs):
    runs = kwargs.pop("runs", None)
    runs = simulate_runs(seed, noise=noise) if runs is None else runs
    options = {"n_resamples": 0, "cv": False, "baselines": False, "weights": "none", **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fits.fit_tradeoff(runs, **options)


@pytest.fixture(scope="module")
def power_fit():
    return _fit()


@pytest.fixture(scope="module")
def power_profile(power_fit) -> ProfileResult:
    return profile_intervals(power_fit)


def test_intervals_cover_the_truth_and_bracket_the_estimate(power_fit, power_profile) -> None:
    for name in ("g", "b"):
        iv = power_profile[name]
        assert iv.interval.low < iv.estimate < iv.interval.high
        assert iv.estimate == pytest.approx(power_fit.params[name], rel=1e-12)
        assert iv.covers(TRUTH[name])
        assert not (iv.interval.low_open or iv.interval.high_open)


def test_ends_sit_where_the_f_probability_reaches_the_level(power_fit, power_profile) -> None:
    from scipy.stats import f as f_dist

    problem = cell_problem(power_fit.model, power_fit.data)
    zero = np.zeros(1, dtype=int)
    rss_min = float(problem.objective(power_fit.theta[None], zero)[0])
    for iv in power_profile.intervals:
        for end in (iv.interval.low, iv.interval.high):
            i = int(np.argmin(np.abs(np.log(iv.values) - math.log(end))))
            assert iv.probabilities[i] == pytest.approx(power_profile.level, abs=1e-4)
        # a point well inside has a lower profile RSS than the ends: the profile is minimised
        # over the other shape (never above the RSS with the other shape at its estimate)
        j = power_fit.model.shape_names.index(iv.name)
        theta = power_fit.theta.copy()
        theta[j] = math.log(iv.interval.high)
        fixed_other = float(problem.objective(theta[None], zero)[0])
        excess = (fixed_other - rss_min) / (power_fit.rss / power_fit.nfree)
        assert f_dist.cdf(excess, 1, power_fit.nfree) >= power_profile.level - 1e-4


def test_profile_and_wald_intervals_agree_on_well_identified_data(power_fit, power_profile):
    # nearly linear locally: the profile interval is close to estimate +- t * SE (Jacobian)
    from scipy.stats import t as t_dist

    names = list(power_fit.model.param_names)
    for name in ("g", "b"):
        se = math.sqrt(power_fit.covariance[names.index(name), names.index(name)])
        half = t_dist.ppf(0.975, power_fit.nfree) * se
        iv = power_profile[name]
        assert iv.interval.width / (2 * half) == pytest.approx(1.0, rel=0.25)


def test_free_rate_reports_whether_nu_covers_one_half() -> None:
    fit = _fit(model="power", rate="free")
    result = profile_intervals(fit, ["nu"])
    assert [iv.name for iv in result.intervals] == ["nu"]
    assert result["nu"].covers(0.5)  # the simulation's truth
    assert "covers 1/2" in str(result)


def test_one_shape_model_needs_no_inner_fit() -> None:
    runs = simulate_runs(0, noise=0.01)
    runs["kl"] = 40.0 * runs["difficulty"] ** 2
    fit = _fit(runs=runs, model="kl")
    result = profile_intervals(fit)
    assert fit.model.shape_names == ("b",)
    assert result["b"].interval.low < fit.params["b"] < result["b"].interval.high


def test_an_end_beyond_the_bound_is_reported_open() -> None:
    fit = _fit(seed=3, noise=0.02)
    iv = profile_intervals(fit, ["b"])["b"]
    lo, _ = fit.model.bounds["b"]
    assert iv.interval.low_open and iv.interval.low == pytest.approx(lo)
    assert not iv.interval.high_open
    assert "<=" in str(profile_intervals(fit, ["b"]))


def test_estimated_weights_are_flagged(power_fit) -> None:
    weighted = _fit(weights="auto")
    result = profile_intervals(weighted, ["g"])
    assert result.weights == "inverse-variance"
    assert "treated as known" in str(result)
    assert profile_intervals(power_fit, ["g"]).caveat is None


def test_serialisation_table_and_chart(power_profile) -> None:
    payload = json.loads(json.dumps(power_profile.to_dict()))
    assert set(payload["intervals"]) == {"g", "b"}
    assert payload["level"] == 0.95
    g = payload["intervals"]["g"]["interval"]
    assert g["method"] == "profile likelihood" and g["level"] == 0.95
    assert g["low"] == power_profile["g"].interval.low
    assert str(power_profile["g"].interval).endswith("(95% profile likelihood)")
    table = power_profile.table
    assert list(table.columns) == ["param", "value", "probability", "level"]
    assert set(table["param"]) == {"g", "b"}
    spec = power_profile.chart().to_dict()
    assert spec["facet"]["field"] == "param"
    assert "<table>" in power_profile.summary_html()


def test_bad_requests_are_refused(power_fit) -> None:
    with pytest.raises(InvalidParameterError, match="shape parameters of this model"):
        profile_intervals(power_fit, ["A"])
    with pytest.raises(InvalidParameterError, match=r"`level` must be in \(0, 1\)"):
        profile_intervals(power_fit, level=1.0)
    with pytest.raises(InvalidParameterError, match="`steps` must be an integer >= 2"):
        profile_intervals(power_fit, steps=1)
    robust = _fit(loss="soft_l1")
    with pytest.raises(InvalidParameterError, match="loss 'linear'"):
        profile_intervals(robust)


def test_cli_profile_writes_its_outputs(tmp_path) -> None:
    runs = tmp_path / "runs.csv"
    simulate_runs(0, noise=0.01).to_csv(runs, index=False)
    out = tmp_path / "fit"
    args = ["fit", str(runs), "--out", str(out), "--n-resamples", "0", "--no-cv"]
    result = CliRunner().invoke(app, [*args, "--no-plots", "--profile", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload["profile"]["intervals"]) == {"g", "b"}
    assert json.loads((out / "fit.json").read_text())["profile"]["level"] == 0.95
    assert (out / "tables" / "profile.csv").is_file()
    assert "Profile-likelihood intervals" in (out / "summary.txt").read_text()
    bad = CliRunner().invoke(app, [*args, "--profile", "--loss", "soft_l1"])
    assert bad.exit_code == 2
    assert "profile intervals need a fit with loss 'linear'" in bad.output
