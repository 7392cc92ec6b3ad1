"""The tradeoff derived (pacbound._tradeoff): the known closed forms of d*(n), signs, numerics."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from pacbound import derive_tradeoff
from pacbound.exceptions import InvalidParameterError

d, n = sp.Symbol("d", positive=True), sp.Symbol("n", positive=True)
A, C, k, g, t, b, a = (sp.Symbol(x, positive=True) for x in ("A", "C", "k", "g", "t", "b", "a"))

KNOWN_POWER = ((2 * b * C * t) / (g * A * sp.sqrt(k))) ** (1 / (g / 2 + b)) * n ** (
    1 / (g + 2 * b)
)
KNOWN_EXP = (sp.log(n) + 2 * sp.log(2 * b * C * t / (a * A * sp.sqrt(k)))) / (a + 2 * b)


def _random_params(names, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return [{p: float(rng.uniform(0.3, 3.0)) for p in names} for _ in range(size)]


@pytest.mark.parametrize(("family", "expected"), [("power", KNOWN_POWER), ("exp", KNOWN_EXP)])
def test_closed_forms_are_exactly_the_known_ones(family, expected):
    der = derive_tradeoff("mcallester", family, family)
    assert der.d_star_expr == expected  # structurally identical, not only equal
    assert sp.simplify(der.d_star_expr - expected) == 0
    # the linear-lambda form is the same with A -> A/sqrt(2) (its G is A sqrt(K/(2n)))
    lin = derive_tradeoff("linear", family, family)
    assert sp.simplify(lin.d_star_expr - expected.subs(A, A / sp.sqrt(2))) == 0
    # numeric spot checks: lambdified closed form vs the formula written in numpy
    budgets = np.geomspace(10, 1e8, 7)
    for p in _random_params(der.parameters):
        got = der.d_star(budgets, on_edge="edge", **p)
        if family == "power":
            want = (2 * p["b"] * p["C"] * p["t"] / (p["g"] * p["A"] * np.sqrt(p["k"]))) ** (
                1 / (p["g"] / 2 + p["b"])
            ) * budgets ** (1 / (p["g"] + 2 * p["b"]))
        else:
            x = 2 * p["b"] * p["C"] * p["t"] / (p["a"] * p["A"] * np.sqrt(p["k"]))
            want = (np.log(budgets) + 2 * np.log(x)) / (p["a"] + 2 * p["b"])
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("gen", ["mcallester", "linear"])
@pytest.mark.parametrize("family", ["power", "exp"])
def test_d_star_increases_with_n_for_power_and_exp(gen, family):
    der = derive_tradeoff(gen, family, family)
    assert der.cross_sign == "negative" and der.cross_sign_method == "symbolic"
    assert der.dd_dn_sign == "positive" and der.monotone_in_n == "increasing"
    assert der.sign_method == "symbolic (derivative of the closed form d*(n))"
    if family == "power":
        assert sp.simplify(der.elasticity_expr - 1 / (g + 2 * b)) == 0
    else:
        assert sp.simplify(der.dd_dn_expr - 1 / (n * (a + 2 * b))) == 0


@pytest.mark.parametrize(("K", "T"), [("power", "power"), ("exp", "exp"), ("d**2 + d", "1/(1+d)")])
def test_condition_and_cross_derivative_match_design(K, T):
    der = derive_tradeoff("mcallester", K, T)
    Kd, Td = der.K_expr, der.T_expr
    foc = der.foc_expr
    assert sp.simplify(foc.lhs - A * sp.diff(Kd, d) / (2 * sp.sqrt(n * Kd))) == 0
    assert sp.simplify(foc.rhs + C * sp.diff(Td, d)) == 0
    # d2B/dd dn = -(A/2) n^(-3/2) d/dd sqrt(K) < 0
    design = -(A / 2) * n ** sp.Rational(-3, 2) * sp.diff(sp.sqrt(Kd), d)
    assert sp.simplify(der.cross_expr - design) == 0 and der.cross_sign == "negative"


@pytest.mark.parametrize("family", ["power", "exp"])
def test_implicit_function_theorem_matches_the_closed_form(family):
    der = derive_tradeoff("mcallester", family, family)
    budgets = np.geomspace(50, 1e9, 9)
    for p in _random_params(der.parameters, size=4, seed=1):
        sol = der.solve(budgets, **p)
        ok = sol.bracketed
        ift = der.fns["ift"](sol.d_star, sol.n, *(p[x] for x in der.parameters))
        np.testing.assert_allclose(ift[ok], sol.dd_dn[ok], rtol=1e-10)
        assert np.all(sol.dd_dn[ok] > 0)


def test_full_mcallester_form_is_numeric_and_still_monotone():
    # sympy.solve cannot do this condition (its n-dependence does not separate); 0.5 s is
    # enough to see it fail, or give up
    der = derive_tradeoff("mcallester", "power", "power", simplified=False, solve_timeout=0.5)
    assert der.parameters[-1] == "delta" and der.d_star_expr is None
    assert any("sympy.solve" in note for note in der.notes)
    assert der.closed_form_method == "none"
    assert der.cross_sign == "negative" and der.cross_sign_method == "symbolic"
    assert der.dd_dn_sign == "positive" and der.sign_method.startswith("symbolic (implicit")
    p = {"A": 1.0, "C": 2.0, "k": 0.5, "g": 1.5, "t": 1.0, "b": 0.7, "delta": 0.05}
    budgets = np.geomspace(100, 1e7, 6)
    ds = der.d_star(budgets, **p)
    assert np.all(np.diff(ds) > 0)
    # against brute force on a fine grid
    grid = np.geomspace(1e-2, 1e3, 400_001)
    for nv, dv in zip(budgets, ds, strict=True):
        vals = der.B(grid, nv, **p)
        assert dv == pytest.approx(grid[np.argmin(vals)], rel=1e-4)
        assert der.B(dv, nv, **p) <= vals.min() + 1e-15


@pytest.mark.parametrize("gen", ["mcallester", "linear"])
def test_gen_term_equals_the_numeric_bound(gen):
    import pacbound

    # G_gen at K(d) = k d (g = 1, d = 1: K = k) against the numeric bound at q = 0
    der = derive_tradeoff(gen, "power", "power", simplified=False, solve_timeout=0.5)
    symbols = [sp.Symbol(x, positive=True) for x in ("d", "n", *der.parameters)]
    G = sp.lambdify(symbols, der.G_expr, modules="numpy")
    rng = np.random.default_rng(4)
    kl = rng.uniform(0, 5000, 20)
    nv = np.round(10 ** rng.uniform(1, 6, 20))
    dv = rng.uniform(0.001, 0.2, 20)
    loss_range = rng.uniform(0.5, 2, 20)
    params = {"A": loss_range, "C": 1.0, "b": 1.0, "g": 1.0, "k": kl, "t": 1.0, "delta": dv}
    got = G(1.0, nv, *(params[p] for p in der.parameters))
    if gen == "mcallester":
        want = loss_range * (pacbound.mcallester(0.0, kl, nv, dv).value)
    else:  # at its optimal lambda, lambda* = sqrt(8 n (K + ln 1/delta)) / A
        lam = np.sqrt(8 * nv * (kl + np.log(1 / dv))) / loss_range
        want = [
            pacbound.linear_lambda(0.0, k, m, de, lambdas=[la], loss_range=a).value
            for k, m, de, la, a in zip(kl, nv, dv, lam, loss_range, strict=True)
        ]
    np.testing.assert_allclose(got, np.asarray(want, float).ravel(), rtol=1e-10)


def test_user_expressions_fall_back_to_the_numeric_solver():
    der = derive_tradeoff("mcallester", "d**2 + d", "1/(1+d)")
    assert der.d_star_expr is None and der.parameters == ("A", "C")
    assert der.dd_dn_sign == "positive" and "Topkis" in der.sign_method
    p = {"A": 1.0, "C": 1.0}
    budgets = np.array([10.0, 100.0, 1e4, 1e6])
    ds = der.d_star(budgets, **p)
    grid = np.linspace(1e-3, 100, 2_000_001)
    for nv, dv in zip(budgets, ds, strict=True):
        vals = der.B(grid, nv, **p)
        assert dv == pytest.approx(grid[np.argmin(vals)], abs=1e-4)
        assert der.B(dv, nv, **p) <= vals.min() + 1e-15
        assert abs(der.foc(dv, nv, **p)) < 1e-12


def test_undecidable_signs_are_decided_numerically_and_said_so():
    der = derive_tradeoff("mcallester", "(d - 1)**2 + 1", "1/d")
    assert der.cross_sign == "mixed" and der.cross_sign_method.startswith("numeric grid")
    assert der.dd_dn_sign == "positive" and der.sign_method.startswith("numeric: dd*/dn at d*(n)")
    assert any("could not be decided symbolically" in note for note in der.notes)
    assumptions = dict(der.assumptions)
    assert assumptions["K'(d) > 0 (K increasing)"].startswith("VIOLATED at d = ")
    assert assumptions["K(d) > 0"] == "shown symbolically (all symbols positive)"
    assert assumptions["T'(d) < 0 (T decreasing)"] == "shown symbolically (all symbols positive)"


def test_assumptions_checked_numerically_when_sympy_cannot_decide():
    der = derive_tradeoff("mcallester", "d**3 - d**2 + d", "1/d")
    for statement in ("K(d) > 0", "K'(d) > 0 (K increasing)"):
        assert dict(der.assumptions)[statement] == (
            "not decided symbolically; holds numerically for d in [0.001, 1000] at the "
            "reference parameters"
        )
    assert der.cross_sign == "negative" and der.cross_sign_method.startswith("numeric grid (n in")
    assert der.dd_dn_sign == "positive" and der.sign_method.startswith("numeric")


def test_derivations_are_cached():
    assert derive_tradeoff("mcallester", "power", "power") is derive_tradeoff(
        "mcallester", " power ", "power"
    )
    assert derive_tradeoff("linear", "exp", "exp") is not derive_tradeoff(
        "mcallester", "exp", "exp"
    )


def test_errors():
    with pytest.raises(
        InvalidParameterError, match=r"^`gen` must be one of 'mcallester', 'linear'"
    ):
        derive_tradeoff("catoni")
    with pytest.raises(InvalidParameterError, match=r"^`K` must be 'power', 'exp' or an expressi"):
        derive_tradeoff("mcallester", 2)
    with pytest.raises(InvalidParameterError, match=r"^`simplified` must be True or False; got 1"):
        derive_tradeoff("mcallester", simplified=1)
    with pytest.raises(InvalidParameterError, match=r"^`params` must be parameter names"):
        derive_tradeoff("mcallester", "k*d", params=["k", "2x"])
    with pytest.raises(InvalidParameterError, match=r"unknown symbol 'x'; the allowed parameters"):
        derive_tradeoff("mcallester", "x*d", params=["k"])
    with pytest.raises(InvalidParameterError, match=r"^`solve_timeout` must be in \[0, 600\]"):
        derive_tradeoff("mcallester", solve_timeout=-1)
    with pytest.raises(InvalidParameterError, match=r"^`d_range` must be a pair"):
        derive_tradeoff("mcallester", d_range=(3, 1))
    with pytest.raises(InvalidParameterError, match=r"^`k` must be in \(0, inf\); got -2\.0\.$"):
        derive_tradeoff("mcallester", reference={"k": -2})
