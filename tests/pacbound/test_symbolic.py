"""The bounds as sympy expressions (pacbound._symbolic): closed forms, references, numerics.

Reference values are those of tests/pacbound/reference/bounds_md.py (mpmath at 100 digits).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.optimize import minimize_scalar

from pacbound import (
    BOUND_SYMBOLS,
    catoni_expr,
    f_quad_expr,
    kl_bernoulli_expr,
    kl_bound_relation,
    kl_inverse_edges,
    linear_lambda_expr,
    mcallester_expr,
    optimal_lambda,
    thiemann_complexity_expr,
    thiemann_expr,
)
from pacbound.exceptions import InvalidParameterError

S = BOUND_SYMBOLS
q, KL, n, delta, lam = S["q"], S["KL"], S["n"], S["delta"], S["lambda"]
C, B, sigma, A, p, c = S["C"], S["B"], S["sigma"], S["A"], S["p"], S["c"]

# (q, KL, n, delta) -> bounds.md 5.2: McAllester, kl (2 sqrt n), kl (n+1), f_quad,
# f_lambda(lambda=1), Catoni C=1, inf_C Catoni = kl^-1(q, (KL + ln 1/delta)/n)
CASES = [
    ((0.02, 500, 30000, 0.025), 0.112153540623, 0.0573109088801, 0.0575260042615,
     0.0680949494215, 0.0739691001977, 0.0571427611588, 0.0570282455053),
    ((0.0, 100, 10000, 0.05), 0.0735846620024, 0.0107709780578, 0.0111579009293,
     0.021658809928, 0.021658809928, 0.0162100632712, 0.0102467142536),
    ((0.1, 5000, 60000, 0.025), 0.304325783096, 0.263439927073, 0.263535044817,
     0.337353616083, 0.366996102552, 0.265076916262, 0.263317334724),
    ((0.3, 50, 1000, 0.05), 0.469030702971, 0.46567673853, 0.469775995406,
     0.550923429361, 0.714285514187, 0.470511208748, 0.4593328134),
]  # fmt: skip


def _f(expr, *symbols):
    return sp.lambdify(symbols, expr, modules="numpy")


def _random_points(size=20, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(0.01, 0.6, size),  # q
        rng.uniform(0.0, 5000.0, size),  # KL
        np.round(10 ** rng.uniform(2, 6, size)),  # n
        rng.uniform(0.001, 0.2, size),  # delta
    )


# ----------------------------------------------------------------- optimal lambda


def test_linear_lambda_star_and_value_are_the_closed_forms():
    opt = optimal_lambda("linear")
    L = KL + sp.log(1 / delta)
    assert sp.simplify(opt.lambda_star - sp.sqrt(8 * n * L) / B) == 0
    assert sp.simplify(opt.complexity - B * sp.sqrt(L / (2 * n))) == 0
    assert sp.simplify(opt.value - (q + B * sp.sqrt(L / (2 * n)))) == 0
    assert sp.simplify(opt.derivative.subs(lam, opt.lambda_star)) == 0
    # numeric spot checks: lambda* minimises, and the value matches the closed form
    qv, kv, nv, dv = _random_points()
    bv = np.linspace(0.5, 3.0, qv.size)
    f = _f(opt.objective, q, KL, n, delta, B, lam)
    ls = _f(opt.lambda_star, KL, n, delta, B)(kv, nv, dv, bv)
    np.testing.assert_allclose(ls, np.sqrt(8 * nv * (kv + np.log(1 / dv))) / bv, rtol=1e-12)
    at = f(qv, kv, nv, dv, bv, ls)
    np.testing.assert_allclose(at, qv + bv * np.sqrt((kv + np.log(1 / dv)) / (2 * nv)), rtol=1e-12)
    assert np.all(at <= f(qv, kv, nv, dv, bv, ls * 1.01))
    assert np.all(at <= f(qv, kv, nv, dv, bv, ls * 0.99))


def test_linear_lambda_sub_gaussian():
    opt = optimal_lambda("linear", sub_gaussian=True)
    L = KL + sp.log(1 / delta)
    assert opt.bound == "linear sub-Gaussian"
    assert sp.simplify(opt.lambda_star - sp.sqrt(2 * n * L) / sigma) == 0
    assert sp.simplify(opt.complexity - sigma * sp.sqrt(2 * L / n)) == 0


def test_thiemann_lambda_star_and_f_quad():
    opt = optimal_lambda("thiemann")
    qp = sp.Symbol("q", positive=True)
    closed = 2 / (sp.sqrt(qp / A + 1) + 1)
    assert sp.simplify(opt.lambda_star.subs(q, qp) - closed) == 0
    assert sp.simplify(opt.value - f_quad_expr()) == 0
    assert sp.simplify(thiemann_expr().subs(lam, opt.lambda_star) - f_quad_expr()) == 0
    assert opt.lambda_star.subs(q, 0) == 1  # the rationalised form holds at q = 0
    # the second derivative is positive on (0, 2): f_lambda is convex there
    d2 = _f(opt.second_derivative, q, A, lam)
    grid = np.linspace(0.01, 1.99, 50)
    assert np.all(d2(0.3, 0.01, grid) > 0) and np.all(d2(0.0, 1.0, grid) > 0)
    # numeric spot checks at random points
    rng = np.random.default_rng(1)
    qv, av = rng.uniform(0, 1, 30), rng.uniform(1e-4, 1, 30)
    ls = _f(opt.lambda_star, q, A)(qv, av)
    np.testing.assert_allclose(ls, 2 / (np.sqrt(qv / av + 1) + 1), rtol=1e-13)
    fl = _f(thiemann_expr(), q, A, lam)
    np.testing.assert_allclose(fl(qv, av, ls), (np.sqrt(qv + av) + np.sqrt(av)) ** 2, rtol=1e-12)
    assert np.all(fl(qv, av, ls) <= fl(qv, av, np.clip(ls * 1.01, 0, 1.999)))


@pytest.mark.parametrize("case", CASES[:2])
def test_thiemann_reference_values(case):
    (qv, kv, nv, dv), *_, fquad, flam1, _, _ = case
    a = float(thiemann_complexity_expr().subs({KL: kv, n: nv, delta: dv}))
    lam_star = float(optimal_lambda("thiemann").lambda_star.subs({q: qv, A: a}))
    assert lam_star == pytest.approx(0.70629246 if qv else 1.0, rel=1e-7)
    fl = _f(thiemann_expr(in_terms_of_A=False), q, KL, n, delta, lam)
    assert fl(qv, kv, nv, dv, 1.0) == pytest.approx(flam1, rel=1e-10)
    assert fl(qv, kv, nv, dv, lam_star) == pytest.approx(fquad, rel=1e-10)


def test_lambda_optimum_renderings():
    opt = optimal_lambda("thiemann")
    text = str(opt)
    assert text.startswith("Optimal lambda of the thiemann bound")
    assert "f_quad" in text and "lambda* =" in text
    latex = opt.as_latex()
    assert latex.startswith("\\begin{align*}") and "\\lambda^*" in latex
    d = opt.to_dict()
    assert d["bound"] == "thiemann"
    assert sp.sympify(d["lambda_star"]).free_symbols == {sp.Symbol("A"), sp.Symbol("q")}
    assert {"objective", "value_latex", "complexity", "second_derivative"} <= set(d)


# ----------------------------------------------------------------- bounds vs references


@pytest.mark.parametrize("case", CASES)
def test_bound_expressions_match_references(case):
    (qv, kv, nv, dv), mca, kl2, kln1, fquad, _, cat1, _ = case
    args = (q, KL, n, delta)
    assert _f(mcallester_expr(), *args)(qv, kv, nv, dv) == pytest.approx(mca, rel=1e-10)
    assert _f(f_quad_expr(in_terms_of_A=False), *args)(qv, kv, nv, dv) == pytest.approx(
        fquad, rel=1e-10
    )
    assert _f(catoni_expr(), *args, C)(qv, kv, nv, dv, 1.0) == pytest.approx(cat1, rel=1e-10)
    # kl relation: the kl bound p is where kl(q||p) meets the right-hand side
    for xi, p_ref in (("2sqrt", kl2), ("n+1", kln1)):
        rel = kl_bound_relation(xi=xi)
        rhs = _f(rel.rhs, KL, n, delta)(kv, nv, dv)
        if qv > 0:
            lhs = _f(rel.lhs, q, p)(qv, p_ref)
        else:  # q = 0: the closed form p = 1 - exp(-c)
            lhs = -np.log1p(-p_ref)
            edge = _f(kl_inverse_edges()["upper at q=0"], c)(rhs)
            assert edge == pytest.approx(p_ref, rel=1e-10)
        assert lhs == pytest.approx(rhs, rel=1e-9)


@pytest.mark.parametrize("case", [CASES[0], CASES[3]])
def test_catoni_infimum_is_the_kl_inverse(case):
    (qv, kv, nv, dv), *_, inf_catoni = case
    f = _f(catoni_expr(), q, KL, n, delta, C)
    res = minimize_scalar(lambda x: f(qv, kv, nv, dv, x), bounds=(0.01, 20), method="bounded",
                          options={"xatol": 1e-10})  # fmt: skip
    assert res.fun == pytest.approx(inf_catoni, rel=1e-9)
    # and that value is kl^-1(q, (KL + ln 1/delta)/n): kl(q||value) = c
    c_val = (kv + np.log(1 / dv)) / nv
    assert _f(kl_bernoulli_expr(), q, p)(qv, inf_catoni) == pytest.approx(c_val, rel=1e-8)


def test_alquier_grid_reference():
    f = _f(linear_lambda_expr(grid_size=30), q, KL, n, delta, B, lam)
    grid = 2.0 ** np.arange(30)
    assert f(0.02, 500, 30000, 0.025, 1.0, grid).min() == pytest.approx(0.116033977478, rel=1e-10)


def test_xi_exact_sum_and_kl_inverse_edges():
    xi = kl_bound_relation(xi="exact").rhs.atoms(sp.Sum).pop()
    assert float(xi.subs(n, 8).doit()) == pytest.approx(4.2450, abs=5e-5)
    assert float(xi.subs(n, 100).doit()) == pytest.approx(13.2100, abs=5e-5)
    edges = kl_inverse_edges()
    assert edges["upper at q=0"] == 1 - sp.exp(-c)
    assert edges["lower at q=1"] == sp.exp(-c)
    kl = kl_bernoulli_expr()
    at_0 = sp.limit(kl, q, 0)  # -ln(1 - p), where the upper edge formula comes from
    assert float((at_0 + sp.log(1 - p)).subs(p, sp.Rational(3, 10))) == pytest.approx(0, abs=1e-15)


def test_linear_lambda_expression_forms():
    bounded = linear_lambda_expr()
    assert sp.simplify(bounded - (q + lam * B**2 / (8 * n) + (KL - sp.log(delta)) / lam)) == 0
    sub = linear_lambda_expr(sub_gaussian=True, grid_size=4)
    expected = q + lam * sigma**2 / (2 * n) + (KL + sp.log(4 / delta)) / lam
    assert sp.simplify(sub - expected) == 0


# ----------------------------------------------------------------- symbolic == numeric


def test_symbolic_equals_numeric_bounds():
    import pacbound

    qv, kv, nv, dv = _random_points(size=25, seed=3)
    args = (q, KL, n, delta)
    np.testing.assert_allclose(
        _f(mcallester_expr(), *args)(qv, kv, nv, dv),
        pacbound.mcallester(qv, kv, nv, dv).value,
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        _f(catoni_expr(), *args, C)(qv, kv, nv, dv, 2.0),
        pacbound.catoni(qv, kv, nv, dv, C=2.0).value,
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        _f(linear_lambda_expr(), *args, B, lam)(qv, kv, nv, dv, 1.0, 50.0),
        pacbound.linear_lambda(qv, kv, nv, dv, lambdas=[50.0]).value,
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        _f(thiemann_expr(in_terms_of_A=False), *args, lam)(qv, kv, nv, dv, 0.7),
        pacbound.thiemann(qv, kv, nv, dv, lam=0.7).value,
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        _f(f_quad_expr(in_terms_of_A=False), *args)(qv, kv, nv, dv),
        pacbound.f_quad(qv, kv, nv, dv).value,
        rtol=1e-10,
    )
    # Thiemann's derived lambda* is the numeric f_quad's
    a = _f(thiemann_complexity_expr(), KL, n, delta)(kv, nv, dv)
    np.testing.assert_allclose(
        _f(optimal_lambda("thiemann").lambda_star, q, A)(qv, a),
        pacbound.f_quad(qv, kv, nv, dv).params["lambda_star"],
        rtol=1e-10,
    )
    pv = np.clip(qv + 0.1, 0, 0.99)
    np.testing.assert_allclose(
        _f(kl_bernoulli_expr(), q, p)(qv, pv), pacbound.kl_bernoulli(qv, pv), rtol=1e-10
    )
    # the kl bound: the numeric kl^-1 satisfies the symbolic relation with equality
    rel = kl_bound_relation()
    cv = _f(rel.rhs, KL, n, delta)(kv, nv, dv)
    pu = pacbound.kl_inv_upper(qv, cv)
    lhs = _f(rel.lhs, q, p)(qv, pu)
    assert np.all(lhs >= cv * (1 - 1e-12))  # conservative: never below the true sup
    well = pu < 0.999  # near p = 1, one ulp of p moves kl(q||p) by more than 1e-9
    assert well.sum() >= 20
    np.testing.assert_allclose(lhs[well], cv[well], rtol=1e-9)
    np.testing.assert_allclose(pacbound.kl_bound(qv, kv, nv, dv).value, pu, rtol=1e-12)


# ----------------------------------------------------------------- errors


def test_errors():
    with pytest.raises(InvalidParameterError, match=r"`xi` must be one of '2sqrt', 'exact'"):
        kl_bound_relation(xi="sqrt")
    with pytest.raises(InvalidParameterError, match=r"`grid_size` must be an integer >= 1"):
        catoni_expr(grid_size=0)
    with pytest.raises(InvalidParameterError, match=r"`grid_size` must be an integer >= 1"):
        linear_lambda_expr(grid_size=2.5)
    with pytest.raises(InvalidParameterError, match=r"`bound` must be one of 'linear'"):
        optimal_lambda("catoni")
    with pytest.raises(InvalidParameterError, match=r"`sub_gaussian` must be False"):
        optimal_lambda("thiemann", sub_gaussian=True)


def test_importing_pacbound_does_not_import_sympy():
    import subprocess
    import sys

    code = "import sys, pacbound; dir(pacbound); print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
