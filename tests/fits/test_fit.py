"""fit_tradeoff end to end on runs simulated from a known model."""

from __future__ import annotations

import numpy as np
import pytest

from fits import FitRefusedError, InsufficientDataError, ModelSpec, Refusal, fit_tradeoff
from pacbound.exceptions import InvalidParameterError
from tests.fits._sim import BUDGETS, TRUTH, simulate_runs, true_dstar

QUICK = {"n_resamples": 0, "cv": False, "baselines": False}


def test_recovers_parameters_and_dstar():
    res = fit_tradeoff(simulate_runs(7, noise=0.005), train_model="flat", **QUICK)
    for name, value in TRUTH.items():
        assert res.params[name] == pytest.approx(value, rel=0.15, abs=0.02), name
    truth = [true_dstar(n, d_ref=2.0, **TRUTH) for n in BUDGETS]
    assert [e.value for e in res.d_star] == pytest.approx(truth, rel=0.05)
    assert all(e.bracketed for e in res.d_star) and res.d_star_method == "closed form"
    assert (
        res.success and res.nobs == 60 and res.ncells == 20 and res.nparams == 5 and res.nfree == 55
    )
    assert res.shift_exponent == pytest.approx(1 / (TRUTH["g"] + 2 * TRUTH["b"]), rel=0.1)


def test_linear_training_surface_agrees_when_training_loss_is_flat():
    runs = simulate_runs(7, noise=0.005)
    flat = fit_tradeoff(runs, train_model="flat", **QUICK)
    linear = fit_tradeoff(runs, train_model="linear", **QUICK)
    assert linear.d_star_method == "bounded search"
    assert [e.value for e in linear.d_star] == pytest.approx(
        [e.value for e in flat.d_star], rel=0.03
    )


def test_training_loss_that_rises_with_difficulty_moves_dstar_easier():
    runs = simulate_runs(8, noise=0.005, train_slope=0.02)
    flat = fit_tradeoff(runs, train_model="flat", **QUICK)
    linear = fit_tradeoff(runs, train_model="linear", **QUICK)
    assert all(lin.value < fl.value for lin, fl in zip(linear.d_star, flat.d_star, strict=True))


def test_bootstrap_intervals_and_verdict():
    res = fit_tradeoff(simulate_runs(9), n_resamples=200, cv=False, baselines=False, seed=1)
    for name in res.params:
        ci = res.intervals[name]
        assert ci.low <= res.params[name] <= ci.high, name
    for e in res.d_star:
        assert e.interval.low <= e.value <= e.interval.high and 0 <= e.p_bracketed <= 1
    assert res.p_increase > 0.99 and res.verdict_code == "increases"
    assert "d* increases with n" in res.verdict and "P(d* at n=2048 > d* at n=64)" in res.verdict
    assert res.draws.n_resamples == 200 and res.config["bootstrap"] == "seeds"


def test_same_seed_same_result():
    runs = simulate_runs(10)
    a = fit_tradeoff(runs, n_resamples=50, cv=False, baselines=False, seed=3)
    b = fit_tradeoff(runs, n_resamples=50, cv=False, baselines=False, seed=3)
    assert a.intervals == b.intervals and a.d_star == b.d_star


def test_refuses_a_fit_without_extrapolation_term():
    with pytest.raises(FitRefusedError, match=r"extrapolation amplitude B = 0") as info:
        fit_tradeoff(simulate_runs(1, truth={"B": 0.0}), **QUICK)
    assert info.value.reason == "amplitude" and "B" in info.value.params


def test_refuses_a_shape_on_its_bound():
    runs = simulate_runs(11, noise=0.005)
    with pytest.raises(FitRefusedError, match=r"`b` .* is on its upper bound 0.5") as info:
        fit_tradeoff(runs, bounds={"b": (0.05, 0.5)}, **QUICK)
    assert info.value.reason == "bound"


def test_robust_loss_resists_an_outlier():
    runs = simulate_runs(2)
    runs.loc[5, "test_loss"] += 0.5
    plain = fit_tradeoff(runs, weights="none", **QUICK)
    robust = fit_tradeoff(runs, weights="none", loss="soft_l1", **QUICK)
    err = lambda r: abs(r.params["b"] - TRUTH["b"]) + abs(r.params["g"] - TRUTH["g"])  # noqa: E731
    assert err(robust) < 0.2 < err(plain)
    assert robust.config["f_scale"] > 0 and robust.config["loss"] == "soft_l1"


def test_free_rate_covers_one_half():
    runs = simulate_runs(3, budgets=(64, 256, 1024, 4096, 16384), d_levels=(2, 3, 4, 5, 6, 8))
    res = fit_tradeoff(
        runs, rate="free", n_resamples=150, cv=False, baselines=False, confidence_level=0.9
    )
    assert res.model.shape_names == ("g", "nu", "b")
    assert res.intervals["nu"].low < 0.5 < res.intervals["nu"].high
    assert "the interval covers the theory's 1/2" in res.summary().text


def test_exponential_and_error_target_forms():
    res = fit_tradeoff(simulate_runs(4), model="exp", **QUICK)
    assert res.model.shape_names == ("a", "b") and res.d_star_method == "bounded search"
    runs = simulate_runs(4)
    runs["train_acc"] = 1.0 - (runs["train_loss"] - 0.25)
    runs["test_acc"] = 1.0 - (runs["test_loss"] - 0.25)
    err = fit_tradeoff(runs, target="error", **QUICK)
    loss = fit_tradeoff(runs, target="loss", **QUICK)
    assert err.params["b"] == pytest.approx(loss.params["b"], rel=1e-6)
    assert err.target == "error"


@pytest.mark.parametrize("gap", ["kl", "catoni"])
def test_kl_and_catoni_gap_forms(gap):
    runs = simulate_runs(4, noise=0.005)
    runs["train_acc"] = 1.0 - (runs["train_loss"] - 0.25)
    runs["test_acc"] = 1.0 - (runs["test_loss"] - 0.25)
    res = fit_tradeoff(runs, target="error", gap=gap, n_resamples=30, cv=False, baselines=False)
    assert res.model.shape_names == ("g", "k", "b") and res.model.spec.gap == gap
    truth = [true_dstar(n, d_ref=2.0, **TRUTH) for n in BUDGETS]
    assert [e.value for e in res.d_star] == pytest.approx(truth, rel=0.1)
    assert res.p_increase > 0.9


def test_measured_complexity_column():
    runs = simulate_runs(5, noise=0.005)
    # a measured KL that grows like (d/2)^2, as the truth's K does
    runs["kl"] = 50.0 * (runs["difficulty"] / 2.0) ** 2
    res = fit_tradeoff(runs, model="kl", **QUICK)
    assert res.model.spec.measured == "kl" and "g" not in res.params
    assert [e.value for e in res.d_star] == pytest.approx(
        [e.value for e in fit_tradeoff(runs, **QUICK).d_star], rel=0.1
    )
    runs.loc[0, "kl"] = np.nan
    with pytest.raises(InsufficientDataError, match=r"`kl` must be finite for every run; got nan"):
        fit_tradeoff(runs, model="kl", **QUICK)


def test_bad_inputs():
    runs = simulate_runs(0)
    with pytest.raises(
        InsufficientDataError, match=r"needs runs at 2 or more budgets .* got 1 \(64\)"
    ):
        fit_tradeoff(runs[runs["n"] == 64], **QUICK)
    few = runs[runs["difficulty"].isin([2.0, 3.0]) & runs["n"].isin([64, 256])]
    with pytest.raises(
        InsufficientDataError, match=r"more \(d, n\) cells than parameters: got 4 cells"
    ):
        fit_tradeoff(few, **QUICK)
    bad = runs.copy()
    bad.loc[3, "test_loss"] = np.nan
    with pytest.raises(
        InsufficientDataError, match=r"`test_loss` must be finite .* run 'd=3_n=64_seed=0'"
    ):
        fit_tradeoff(bad, **QUICK)
    ok = fit_tradeoff(bad, exclude=["d=3_n=64_seed=0"], **QUICK)
    assert ok.config["excluded"] == [
        {"run_id": "d=3_n=64_seed=0", "reason": "excluded by the user"}
    ]
    with pytest.raises(InvalidParameterError, match="`loss` must be one of"):
        fit_tradeoff(runs, loss="l2", **QUICK)
    with pytest.raises(InvalidParameterError, match="`model` must be '<K>"):
        fit_tradeoff(runs, model="cubic", **QUICK)
    with pytest.raises(InvalidParameterError, match=r"`bounds` must name shape parameters"):
        fit_tradeoff(runs, bounds={"zz": (1, 2)}, **QUICK)
    zero = runs.assign(difficulty=runs["difficulty"] - 2.0)
    with pytest.raises(
        InsufficientDataError, match=r"`difficulty` must be > 0 for power-law terms"
    ):
        fit_tradeoff(zero, **QUICK)
    with pytest.raises(
        InsufficientDataError, match=r"the kl gap needs a training risk in \[0, 1\]"
    ):
        fit_tradeoff(runs.assign(train_loss=runs["train_loss"] + 2), gap="kl", **QUICK)
    single = runs.drop_duplicates(["difficulty", "n"])
    with pytest.raises(InsufficientDataError, match="`bootstrap` 'seeds' needs two or more runs"):
        fit_tradeoff(single, n_resamples=10, bootstrap="seeds", cv=False, baselines=False)


def test_wild_bootstrap_without_replicates():
    single = simulate_runs(12).drop_duplicates(["difficulty", "n"])
    res = fit_tradeoff(single, n_resamples=100, cv=False, baselines=False)
    assert res.config["bootstrap"] == "wild" and res.config["weights"] == "none"
    assert all(e.interval is not None for e in res.d_star)


def test_model_spec_object_is_accepted():
    res = fit_tradeoff(simulate_runs(0), model=ModelSpec(extrap="power", delta=0.1), **QUICK)
    assert res.model.spec.delta == 0.1


def test_many_refits_on_a_bound_warn():
    from fits import DegenerateBootstrapWarning

    with pytest.warns(
        DegenerateBootstrapWarning, match=r"of the 100 bootstrap refits ended on a bound"
    ):
        res = fit_tradeoff(
            simulate_runs(1, noise=0.01),
            bounds={"b": (0.75, 1.3)},
            n_resamples=100,
            cv=False,
            baselines=False,
        )
    assert (res.draws.flags == Refusal.ON_BOUND).mean() > 0.1
