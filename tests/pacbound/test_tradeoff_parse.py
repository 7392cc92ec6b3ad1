"""Parsing K(d) and T(d) (pacbound._tradeoff_parse): families, expressions, every refusal."""

from __future__ import annotations

import pytest
import sympy as sp

from pacbound._tradeoff_parse import parse_curve
from pacbound.exceptions import InvalidParameterError

d = sp.Symbol("d", positive=True)
k, g, a, t, b = (sp.Symbol(x, positive=True) for x in "kgatb")

HEAD = r"`K` must be 'power', 'exp' or an expression in d such as 'k\*d\*\*2 \+ d'; got "


def test_families():
    assert parse_curve("K", "power").expr == k * d**g
    assert parse_curve("K", "exp").expr == k * sp.exp(a * d)
    assert parse_curve("T", "power").expr == t * d ** (-b)
    assert parse_curve("T", " exp ").expr == t * sp.exp(-b * d)
    curve = parse_curve("K", "power")
    assert (curve.family, curve.spec, curve.parameters) == ("power", "power", ("g", "k"))


@pytest.mark.parametrize(
    ("text", "expected", "params"),
    [
        ("d**2 + d", d**2 + d, ()),
        ("1/(1+d)", 1 / (1 + d), ()),
        ("k*d^2", k * d**2, ("k",)),  # ^ is a power
        ("t*exp(-b*d)", t * sp.exp(-b * d), ("b", "t")),
        ("ln(1 + d) + sqrt(d)", sp.log(1 + d) + sp.sqrt(d), ()),
        ("E**d * pi", sp.pi * sp.exp(d), ()),
        ("log(d, 2)", sp.log(d) / sp.log(2), ()),
    ],
)
def test_expressions(text, expected, params):
    curve = parse_curve("K", text)
    assert sp.simplify(curve.expr - expected) == 0
    assert curve.family == "expression" and curve.parameters == params
    assert all(s.is_positive for s in curve.expr.free_symbols)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("d**", r"\(invalid syntax\)"),
        ("d*(1", r"\(invalid syntax: eof in multi-line statement\)"),
        ("().__class__", r"\('\.' is not allowed\)"),
        ("d.real", r"\('\.' is not allowed\)"),
        ("__import__('os')", r"\(name '__import__' is not allowed\)"),
        ("lambda: d", r"\(name 'lambda' is not allowed\)"),
        ("[d]", r"\('\[' is not allowed\)"),
        ("'d'", r"\(\"'d'\" is not allowed\)"),
        ("d; 1", r"\(';' is not allowed\)"),
        ("d!", r"\('!' is not allowed\)"),
        ("1j*d", r"\(complex number '1j'\)"),
        ("foo(d)", r"\(unknown function 'foo'; allowed: exp, ln, log, sqrt\)"),
        ("k(d)", r"\(unknown function 'k'; allowed: exp, ln, log, sqrt\)"),
        ("n*d", r"\('n' is reserved\)"),
        ("A*d", r"\('A' is reserved\)"),
        ("I*d", r"\('I' is reserved\)"),
        ("2*k", r"\(it does not depend on d\)"),
        ("d/0", r"\(not a finite expression\)"),
        ("10**10**10*d", r"\(numeric exponent 1\.00000E\+10 is too large\)"),
        ("exp + d", r"\(cannot parse: SympifyError: exp\)"),
    ],
)
def test_refusals(text, why):
    with pytest.raises(InvalidParameterError, match=HEAD + ".*" + why + r"\.$"):
        parse_curve("K", text)


def test_restricted_parameters_and_empty_and_long_text():
    assert parse_curve("T", "t/(1+d)**b", allowed_params=["t", "b"]).parameters == ("b", "t")
    msg = r"unknown symbol 'x'; the allowed parameters are: b, t\)\.$"
    with pytest.raises(InvalidParameterError, match=msg):
        parse_curve("T", "t/(1+d)**x", allowed_params=["t", "b"])
    with pytest.raises(
        InvalidParameterError, match=r"^`T` must be .* such as 't/\(1 \+ d\)'; got ''\.$"
    ):
        parse_curve("T", "")
    with pytest.raises(InvalidParameterError, match=r"longer than 1000 characters"):
        parse_curve("K", "d" + "+d" * 600)
