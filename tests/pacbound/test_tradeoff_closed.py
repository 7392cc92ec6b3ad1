"""Closed forms of d*(n) (pacbound._tradeoff_closed): exact routes, sympy.solve, the checks."""

from __future__ import annotations

import numpy as np
import sympy as sp

from pacbound import derive_tradeoff
from pacbound._tradeoff_closed import (
    CHECK_POINTS,
    _log_linear_root,
    _solve_with_timeout,
    _validate_root,
)

d, n = sp.Symbol("d", positive=True), sp.Symbol("n", positive=True)
A, C, k, g, t, b, a = (sp.Symbol(x, positive=True) for x in ("A", "C", "k", "g", "t", "b", "a"))


def test_log_linear_routes():
    # power law: lhs ~ d^(g/2 - 1) n^(-1/2), rhs ~ d^(-b-1)
    lhs = A * g * sp.sqrt(k) * d ** (g / 2 - 1) / (2 * sp.sqrt(n))
    root, how = _log_linear_root(lhs, C * b * t * d ** (-b - 1), d)
    assert "power law" in how
    assert root == (2 * b * C * t / (g * A * sp.sqrt(k))) ** (1 / (g / 2 + b)) * n ** (
        1 / (g + 2 * b)
    )
    # exponential
    lhs = A * a * sp.sqrt(k) * sp.exp(a * d / 2) / (2 * sp.sqrt(n))
    root, how = _log_linear_root(lhs, C * b * t * sp.exp(-b * d), d)
    assert "exponential" in how
    assert root == (sp.log(n) + 2 * sp.log(2 * b * C * t / (a * A * sp.sqrt(k)))) / (a + 2 * b)
    # both, with coefficients of one sign: Lambert W
    root, how = _log_linear_root(lhs, C * b * t * d ** (-b - 1), d)
    assert root.has(sp.LambertW) and "W0" in how
    # not of these forms, or sides of unknown sign
    assert _log_linear_root(A * (2 * d + 1) / sp.sqrt(n), C / (1 + d) ** 2, d) is None
    assert _log_linear_root(d - 1, C * d, d) is None


def test_solve_with_timeout_reports_each_outcome():
    sols, msg = _solve_with_timeout(d**2 - n, d, 10.0)
    assert sols == [sp.sqrt(n)] and msg == "sympy.solve returned 1 solution(s)"
    assert _solve_with_timeout(d - n, d, 0.0) == ([], "sympy.solve not tried (solve_timeout = 0)")
    hard = A * g * d ** (g / 2 - 1) / (2 * sp.sqrt(n)) - C * b * sp.exp(-b * d)
    sols, msg = _solve_with_timeout(hard, d, 0.3)
    assert sols == [] and msg == "sympy.solve gave no answer within 0.3 s"


def test_validation_accepts_the_minimiser_and_rejects_anything_else():
    der = derive_tradeoff("mcallester", "power", "power")
    assert _validate_root(der.d_star_expr, der.fns, der.parameters) == (CHECK_POINTS, 0)
    assert _validate_root(2 * der.d_star_expr, der.fns, der.parameters) == (0, CHECK_POINTS)
    assert _validate_root(-der.d_star_expr, der.fns, der.parameters) == (0, 0)  # never in d > 0


def test_lambert_w_closed_form_agrees_with_the_numeric_search():
    der = derive_tradeoff("mcallester", "exp", "power")
    assert der.d_star_expr.has(sp.LambertW) and der.dd_dn_sign == "positive"
    params = {"A": 0.8, "C": 1.7, "a": 0.6, "b": 1.3, "k": 2.0, "t": 0.5}
    budgets = np.geomspace(2, 1e9, 12)
    closed = der.solve(budgets, **params)
    numeric = der.solve(budgets, method="numeric", **params)
    assert closed.method == "closed form" and closed.bracketed.all() and numeric.bracketed.all()
    np.testing.assert_allclose(closed.d_star, numeric.d_star, rtol=1e-10)
    np.testing.assert_allclose(closed.dd_dn, numeric.dd_dn, rtol=1e-8)


def test_sympy_solve_route_with_a_user_expression():
    der = derive_tradeoff("mcallester", "d**2", "1/(1 + d)")
    assert der.closed_form_method == "sympy.solve"
    assert sp.simplify(der.d_star_expr - (sp.sqrt(C / A) * n ** sp.Rational(1, 4) - 1)) == 0
    params = {"A": 1.0, "C": 2.0}
    budgets = np.array([0.1, 10.0, 1e3, 1e6])  # at n = 0.1 the formula is negative
    closed = der.solve(budgets, **params)
    assert closed.bracketed.tolist() == [False, True, True, True]
    numeric = der.solve(budgets[1:], method="numeric", **params)
    np.testing.assert_allclose(closed.d_star[1:], numeric.d_star, rtol=1e-10)


def test_no_closed_form_when_solve_runs_out_of_time():
    der = derive_tradeoff("mcallester", "power", "exp", solve_timeout=0.3)
    assert der.d_star_expr is None and der.closed_form_method == "none"
    assert any("gave no answer within 0.3 s" in note for note in der.notes)
    assert der.dd_dn_sign == "positive"  # still decided (Topkis), see test_tradeoff
