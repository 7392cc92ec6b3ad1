"""TradeoffDerivation (pacbound._derivation): callables, d*(n) edges, text, LaTeX, to_dict."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from pacbound import TradeoffDerivation, derive_tradeoff
from pacbound.exceptions import InvalidParameterError
from pacbound.support._io import to_jsonable

POWER = {"A": 1.2, "C": 0.8, "k": 2.0, "g": 1.5, "t": 0.9, "b": 0.6}
EXP = {"A": 1.0, "C": 0.2, "k": 1.0, "a": 1.0, "t": 1.0, "b": 1.0}

DICT_KEYS = [
    "gen", "simplified", "gen_description", "K", "T", "K_family", "T_family", "K_expr",
    "K_expr_latex", "T_expr", "T_expr_latex", "parameters", "assumptions", "G", "G_latex", "B",
    "B_latex", "foc", "foc_latex", "cross_derivative", "cross_derivative_latex",
    "cross_derivative_sign", "cross_derivative_method", "dd_dn", "dd_dn_latex", "d_star",
    "d_star_latex", "closed_form_method", "dd_dn_closed", "dd_dn_closed_latex", "elasticity",
    "elasticity_latex", "dd_dn_sign", "sign_method", "monotone_in_n", "reference", "notes",
]  # fmt: skip


@pytest.fixture(scope="module")
def power():
    return derive_tradeoff("mcallester", "power", "power")


def test_callables_broadcast_and_match_the_formula(power):
    assert isinstance(power, TradeoffDerivation) and power.has_closed_form
    d = np.linspace(0.5, 5, 7)[:, None]
    n = np.array([100.0, 1e4, 1e6])[None, :]
    p = POWER
    want = p["A"] * np.sqrt(p["k"] * d ** p["g"] / n) + p["C"] * p["t"] * d ** (-p["b"])
    got = power.B(d, n, **p)
    assert got.shape == (7, 3)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    # dB/dd is zero at d*(n), and B is smallest there
    ds = power.d_star(n.ravel(), **p)
    np.testing.assert_allclose(power.foc(ds, n.ravel(), **p), 0, atol=1e-13)
    for eps in (0.999, 1.001):
        assert np.all(power.B(ds * eps, n.ravel(), **p) > power.B(ds, n.ravel(), **p))
    assert power.d_star(1e4, **p).shape == ()
    assert power.d_star([[10, 100]], **p).shape == (1, 2)
    assert power.dd_dn([10, 100], **p).shape == (2,)


def test_closed_form_and_numeric_agree_at_rtol_1e10(power):
    budgets = np.geomspace(3, 1e10, 25)
    closed = power.solve(budgets, **POWER)
    numeric = power.solve(budgets, method="numeric", **POWER)
    assert closed.method == "closed form" and numeric.method == "numeric"
    assert closed.bracketed.all() and numeric.bracketed.all()
    np.testing.assert_allclose(numeric.d_star, closed.d_star, rtol=1e-10)
    np.testing.assert_allclose(numeric.dd_dn, closed.dd_dn, rtol=1e-9)
    np.testing.assert_allclose(numeric.B_min, closed.B_min, rtol=1e-12)


def test_edges_raise_or_are_flagged():
    der = derive_tradeoff("mcallester", "exp", "exp")
    budgets = np.array([1.0, 1e4])  # at n = 1 the closed form is negative: outside d > 0
    with pytest.raises(InvalidParameterError) as err:
        der.d_star(budgets, **EXP)
    assert str(err.value) == (
        "`n` must give a d*(n) inside d > 0; got n = 1, where the closed form gives d = "
        "-0.61086, so the minimiser is not bracketed. Pass on_edge='nan' or 'edge' to keep the "
        "other values."
    )
    nan = der.d_star(budgets, on_edge="nan", **EXP)
    assert np.isnan(nan[0]) and nan[1] > 0
    edge = der.d_star(budgets, on_edge="edge", **EXP)
    assert edge[0] == pytest.approx(-0.61086049, rel=1e-7)
    assert np.isnan(der.dd_dn(budgets, **EXP)[0])
    # a closed form outside a given range, and a numeric search stopped by the range
    with pytest.raises(InvalidParameterError, match=r"^`n` must give a d\*\(n\) inside \[0, 2\]"):
        der.d_star(1e4, d_range=(0, 2), **EXP)
    with pytest.raises(InvalidParameterError) as err:
        der.d_star(1e4, d_range=(0.1, 2), method="numeric", **EXP)
    assert str(err.value).startswith(
        "`d_range` must bracket the minimiser of B(d, n); got (0.1, 2), and at n = 10000 the "
        "minimum is on its edge (d = 2), not bracketed."
    )


def test_argument_errors(power):
    with pytest.raises(InvalidParameterError, match=r"^`on_edge` must be one of 'raise', 'nan'"):
        power.d_star(10, on_edge="clip", **POWER)
    with pytest.raises(InvalidParameterError, match=r"^`method` must be one of 'auto', 'closed'"):
        power.solve(10, method="brent", **POWER)
    with pytest.raises(InvalidParameterError, match=r"^`k` must be given \(a positive number\)"):
        power.B(1.0, 10, A=1, C=1, g=1, t=1, b=1)
    with pytest.raises(InvalidParameterError, match=r"^`z` must be a parameter of B\(d, n\)"):
        power.d_star(10, z=1, **POWER)
    with pytest.raises(InvalidParameterError, match=r"^`n` must be in \(0, inf\); got -5\.0\.$"):
        power.d_star(-5, **POWER)
    user = derive_tradeoff("mcallester", "d**2 + d", "1/(1+d)")
    with pytest.raises(InvalidParameterError, match=r"^`method` must be 'auto' or 'numeric'"):
        user.solve(10, method="closed", A=1, C=1)


def test_text_rendering(power):
    text = str(power)
    assert text == power.as_text()
    lines = text.splitlines()
    assert lines[0] == "Tradeoff B(d, n) = G_gen(K(d), n) + C*T(d)"
    assert "  K(d) = d**g*k   (power family)" in lines
    assert "  d*(n) = n**(1/(2*b + g))*(2*C*b*t/(A*g*sqrt(k)))**(1/(b + g/2))" in lines
    assert (
        "Sign of dd*/dn: positive (symbolic (derivative of the closed form d*(n))); d*(n) is "
        "increasing in n" in lines
    )
    assert any("by Topkis' theorem argmin_d B(d, n) is non-decreasing in n" in x for x in lines)
    user = str(derive_tradeoff("mcallester", "d**2 + d", "1/(1+d)"))
    assert "d*(n): numeric only (no closed form); a bounded search gives it: " in user


def test_latex_rendering(power):
    latex = power.as_latex()
    assert latex.startswith("\\begin{align*}\n") and latex.endswith("\n\\end{align*}")
    assert "d^*(n) &= " + sp.latex(power.d_star_expr) in latex
    assert "\\text{(first-order condition)}" in latex and "\\text{(positive)}" in latex
    user = derive_tradeoff("mcallester", "d**2 + d", "1/(1+d)").as_latex()
    assert "\\text{numeric only; }" in user


def test_to_dict_keys_and_round_trip(power):
    out = power.to_dict()
    assert list(out) == DICT_KEYS
    assert json.loads(json.dumps(to_jsonable(out))) == out
    assert sp.sympify(out["d_star"], locals={str(s): s for s in power.d_star_expr.free_symbols}) \
        == power.d_star_expr  # fmt: skip
    assert out["monotone_in_n"] == "increasing" and out["dd_dn_sign"] == "positive"
    assert out["foc"] == f"{power.foc_expr.lhs} = {power.foc_expr.rhs}"
    user = derive_tradeoff("mcallester", "d**2 + d", "1/(1+d)").to_dict()
    assert user["d_star"] is None and user["d_star_latex"] is None and user["K"] == "d**2 + d"
    assert user["K_family"] == "expression" and user["closed_form_method"] == "none"
