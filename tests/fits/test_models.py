"""Model forms: parsing, the design columns against the bounds of pacbound, closed-form d*."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fits import ModelSpec, TradeoffModel, prepare_data
from pacbound.exceptions import InvalidParameterError
from tests.fits._sim import simulate_runs


@pytest.fixture(scope="module")
def data():
    return prepare_data(simulate_runs(0))


def test_parse_and_validation():
    assert ModelSpec.parse("power") == ModelSpec("power", "power")
    assert ModelSpec.parse("exp").extrap == "exp"
    assert ModelSpec.parse("power,exp") == ModelSpec("power", "exp")
    assert ModelSpec.parse(" kl ").extrap == "power" and ModelSpec.parse("kl").measured == "kl"
    assert ModelSpec.parse("sq_dist,exp", gap="kl").label == "kl gap, K=sq_dist, T=exp, n^-1/2"
    with pytest.raises(InvalidParameterError, match="`model` must be '<K>"):
        ModelSpec.parse("power,exp,kl")
    with pytest.raises(InvalidParameterError, match="`gap` must be one of"):
        ModelSpec(gap="hoeffding")
    with pytest.raises(
        InvalidParameterError,
        match=r"`delta` must be in the open interval|`delta` must be in \(0, 1\)",
    ):
        ModelSpec(delta=1.0)


def test_shape_parameters_and_bounds(data):
    m = TradeoffModel.for_data(ModelSpec(rate="free"), data)
    assert m.shape_names == ("g", "nu", "b") and m.param_names[-3:] == ("A", "B", "E")
    assert m.d_ref == 2.0 and m.d_range == (2.0, 6.0)
    k = TradeoffModel.for_data(
        ModelSpec("exp", gap="catoni"), prepare_data(simulate_runs(0).assign(train_loss=0.1))
    )
    assert k.shape_names == ("a", "k", "b") and k.bounds["a"][1] == pytest.approx(12.0 / 4.0)
    back = TradeoffModel.from_dict(m.to_dict())
    assert back == m


def test_mcallester_columns_match_the_formula(data):
    m = TradeoffModel.for_data(ModelSpec(), data)
    theta = np.log([[2.0, 1.0]])
    d, n = np.array([2.0, 4.0, 6.0]), np.array([64.0, 256.0, 1024.0])
    X = m.columns(theta, d, n)
    x = d / 2.0
    assert X[0, :, 0] == pytest.approx(np.sqrt(x**2 / (2 * n)), rel=1e-14)
    assert X[0, :, 1] == pytest.approx(1 / x, rel=1e-14)
    assert X[0, :, 2] == pytest.approx(1.0)


def test_measured_kl_gap_is_the_mcallester_complexity():
    from pacbound import mcallester

    runs = simulate_runs(0).assign(kl=lambda f: 10.0 * f["difficulty"])
    m = TradeoffModel.for_data(ModelSpec("kl"), prepare_data(runs, complexity="kl"))
    K, n, q = np.array([20.0, 40.0]), np.array([64.0, 256.0]), np.array([0.1, 0.2])
    G = m.gap_and_extrap(np.zeros((1, 1)), np.array([2.0, 4.0]), n, q, K)[0][0]
    ref = np.array(
        [mcallester(qi, Ki, ni, 0.05).value - qi for qi, Ki, ni in zip(q, K, n, strict=True)]
    )
    assert G == pytest.approx(ref, rel=1e-12)


def test_kl_and_catoni_gaps_match_pacbound():
    import pacbound

    runs = simulate_runs(0).assign(train_loss=0.1, kl=lambda f: 10.0 * f["difficulty"])
    data = prepare_data(runs, complexity="kl")
    K, n, q = np.array([20.0, 40.0]), np.array([64.0, 256.0]), np.array([0.1, 0.2])
    d = np.array([2.0, 4.0])
    kl_model = TradeoffModel.for_data(ModelSpec("kl", gap="kl"), data)
    G = kl_model.gap_and_extrap(np.log([[1.0]]), d, n, q, K)[0][0]
    ref = [
        pacbound.kl_bound(qi, Ki, ni, 0.05).value - qi for qi, Ki, ni in zip(q, K, n, strict=True)
    ]
    assert G == pytest.approx(ref, rel=1e-10)
    cat = TradeoffModel.for_data(ModelSpec("kl", gap="catoni", catoni_C=2.0), data)
    G = cat.gap_and_extrap(np.log([[1.0]]), d, n, q, K)[0][0]
    ref = [
        pacbound.catoni(qi, Ki, ni, 0.05, C=2.0).value - qi
        for qi, Ki, ni in zip(q, K, n, strict=True)
    ]
    assert G == pytest.approx(ref, rel=1e-10)


def test_catoni_gap_formula():
    runs = simulate_runs(0).assign(train_loss=0.1, kl=lambda f: 10.0 * f["difficulty"])
    m = TradeoffModel.for_data(
        ModelSpec("kl", gap="catoni", catoni_C=1.5), prepare_data(runs, complexity="kl")
    )
    q, K, n = 0.2, 30.0, 100.0
    G = m.gap_and_extrap(
        np.log([[1.0]]), np.array([3.0]), np.array([n]), np.array([q]), np.array([K])
    )[0][0, 0]
    bound = (1 - math.exp(-1.5 * q - (K + math.log(1 / 0.05)) / n)) / (1 - math.exp(-1.5))
    assert G == pytest.approx(bound - q, rel=1e-13)


@pytest.mark.parametrize("family", ["power", "exp"])
def test_closed_form_dstar_is_the_argmin(family, data):
    m = TradeoffModel.for_data(ModelSpec.parse(family), data)
    theta = np.log([[1.7, 0.9]]) if family == "power" else np.log([[0.8, 0.6]])
    amps = np.array([[2.0, 0.3, 0.1]])
    n = np.array([64.0, 512.0, 4096.0])
    closed = m.closed_form_dstar(theta, amps, n)[0]
    for j, nj in enumerate(n):
        grid = np.linspace(0.5, 60, 200001)
        f = m.predict(theta, amps, grid, np.full_like(grid, nj))[0]
        assert closed[j] == pytest.approx(grid[np.argmin(f)], abs=1e-3)


@pytest.mark.parametrize("family", ["power", "exp"])
def test_closed_form_agrees_with_pacbound_derive_tradeoff(family, data):
    from pacbound import derive_tradeoff

    der = derive_tradeoff("mcallester", family, family)
    m = TradeoffModel.for_data(ModelSpec.parse(family), data)
    n = np.array([64.0, 1024.0, 16384.0])
    A_m, B_m, d_ref = 2.0, 0.3, m.d_ref
    if family == "power":
        g, b = 1.7, 0.9
        theta = np.log([[g, b]])
        # A sqrt(k d^g / n) + C t d^-b  ==  A_m (d/d_ref)^(g/2) / sqrt(2 n) + B_m (d/d_ref)^-b
        params = {
            "A": 1.0,
            "C": 1.0,
            "k": A_m**2 / (2 * d_ref**g),
            "g": g,
            "t": B_m * d_ref**b,
            "b": b,
        }
    else:
        a, b = 0.8, 0.6
        theta = np.log([[a, b]])
        params = {
            "A": 1.0,
            "C": 1.0,
            "k": A_m**2 * math.exp(-a * d_ref) / 2,
            "a": a,
            "t": B_m * math.exp(b * d_ref),
            "b": b,
        }
    ours = m.closed_form_dstar(theta, np.array([[A_m, B_m, 0.0]]), n)[0]
    theirs = np.asarray(der.d_star(n, **params), dtype=float)
    assert ours == pytest.approx(theirs, rel=1e-10)


def test_closed_form_without_a_term(data):
    m = TradeoffModel.for_data(ModelSpec(), data)
    out = m.closed_form_dstar(
        np.log([[2.0, 1.0]]), np.array([[0.0, 0.3, 0.0], [1.0, 0.0, 0.0]]), np.array([100.0])
    )
    assert out[0, 0] == np.inf and out[1, 0] == -np.inf
    mixed = TradeoffModel.for_data(ModelSpec("power", "exp"), data)
    assert not mixed.has_closed_form
    with pytest.raises(InvalidParameterError, match="has no closed-form"):
        mixed.closed_form_dstar(np.zeros((1, 2)), np.ones((1, 3)), np.array([1.0]))
