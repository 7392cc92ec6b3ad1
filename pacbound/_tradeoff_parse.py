"""The curves K(d) and T(d) of the tradeoff: named families, or a user's expression in d.

``K(d)`` (the KL between posterior and prior at difficulty d, increasing) and ``T(d)`` (the
extrapolation gap, decreasing) are given either as a family name, "power" (K = k d^g,
T = t d^-b) or "exp" (K = k e^{a d}, T = t e^{-b d}), or as an expression in ``d`` such as
``"k*d**2 + d"`` or ``"1/(1 + d)"``.

Expressions are parsed with :func:`sympy.parsing.sympy_parser.parse_expr`, which evaluates
Python code, so the text is screened first with :mod:`tokenize`: only numbers, names, the
operators ``+ - * / ** ^`` and parentheses (and commas between function arguments) pass; names
must be ``d``, a function of :data:`FUNCTIONS`, a constant (``pi``, ``E``) or a parameter
(any other identifier that is not reserved); the parser sees no builtins and a namespace that
holds only those objects. Numeric powers with huge exponents (``10**10**10``) are refused
before anything is evaluated. Every parameter is a positive real sympy symbol.
"""

from __future__ import annotations

import io
import keyword
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

import sympy as sp
from sympy.parsing.sympy_parser import (
    convert_xor,
    parse_expr,
    standard_transformations,
)

from pacbound.exceptions import InvalidParameterError

__all__ = [
    "FAMILIES",
    "FUNCTIONS",
    "RESERVED",
    "Curve",
    "difficulty_symbol",
    "parameter_symbol",
    "parse_curve",
]

#: Functions a user expression may call.
FUNCTIONS: dict[str, sp.Basic] = {
    "exp": sp.exp,
    "log": sp.log,
    "ln": sp.log,
    "sqrt": sp.sqrt,
}
_CONSTANTS: dict[str, sp.Basic] = {"pi": sp.pi, "E": sp.E}

#: Names a user expression may not use as parameters: the budget, the amplitudes of the
#: tradeoff, the confidence, sympy's special values and the keyword options of ``d_star``.
RESERVED: frozenset[str] = frozenset(
    {"n", "A", "C", "delta", "I", "oo", "zoo", "nan", "d_range", "on_edge", "method"}
)

_MAX_CHARS = 1000
_MAX_NUMERIC_EXPONENT = 10_000
_ALLOWED_OPS = frozenset({"+", "-", "*", "/", "**", "^", "(", ")", ","})

#: The named families: curve name -> family -> (expression builder, parameter names).
FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "K": {"power": ("k", "g"), "exp": ("k", "a")},
    "T": {"power": ("t", "b"), "exp": ("t", "b")},
}


def difficulty_symbol() -> sp.Symbol:
    """The difficulty ``d`` (a positive real symbol)."""
    return sp.Symbol("d", positive=True)


def parameter_symbol(name: str) -> sp.Symbol:
    """A parameter of the tradeoff: a positive real symbol named ``name``."""
    return sp.Symbol(name, positive=True)


@dataclass(frozen=True, eq=False)
class Curve:
    """A parsed K(d) or T(d).

    Attributes
    ----------
    name : str
        "K" or "T".
    spec : str
        What the user gave ("power", "exp" or the expression text).
    family : str
        "power", "exp" or "expression".
    expr : sympy.Expr
        The curve as an expression in ``d`` and positive parameters.
    parameters : tuple of str
        The parameter names it uses, sorted.
    """

    name: str
    spec: str
    family: str
    expr: sp.Expr
    parameters: tuple[str, ...]


def _family_expr(name: str, family: str) -> sp.Expr:
    d = difficulty_symbol()
    if name == "K":
        k = parameter_symbol("k")
        rate = parameter_symbol("g" if family == "power" else "a")
        return k * d**rate if family == "power" else k * sp.exp(rate * d)
    t, b = parameter_symbol("t"), parameter_symbol("b")
    return t * d ** (-b) if family == "power" else t * sp.exp(-b * d)


def _allowed_text(name: str) -> str:
    example = "'k*d**2 + d'" if name == "K" else "'t/(1 + d)'"
    return f"'power', 'exp' or an expression in d such as {example}"


def _fail(name: str, text: str, why: str) -> InvalidParameterError:
    return InvalidParameterError(f"`{name}` must be {_allowed_text(name)}; got {text!r} ({why}).")


def _screen_tokens(name: str, text: str) -> list[str]:
    """Tokenise ``text`` and return the identifiers it uses, or raise on anything else."""
    names: list[str] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
        raise _fail(name, text, f"invalid syntax: {exc.args[0].lower()}") from None
    for tok, following in zip(tokens, [*tokens[1:], None], strict=True):
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.NUMBER:
            if tok.string[-1] in "jJ":
                raise _fail(name, text, f"complex number {tok.string!r}")
            continue
        if tok.type == tokenize.NAME:
            if keyword.iskeyword(tok.string) or tok.string.startswith("_"):
                raise _fail(name, text, f"name {tok.string!r} is not allowed")
            is_call = following is not None and following.string == "("
            if is_call and tok.string not in FUNCTIONS:
                allowed = ", ".join(sorted(FUNCTIONS))
                raise _fail(name, text, f"unknown function {tok.string!r}; allowed: {allowed}")
            names.append(tok.string)
            continue
        if tok.type == tokenize.OP and tok.string in _ALLOWED_OPS:
            continue
        raise _fail(name, text, f"{tok.string!r} is not allowed")
    return names


def _check_numeric_powers(name: str, text: str, expr: sp.Basic) -> None:
    for node in sp.postorder_traversal(expr):
        if isinstance(node, sp.Pow) and node.base.is_number and node.exp.is_number:
            exponent = abs(complex(sp.N(node.exp, 15)))
            if exponent > _MAX_NUMERIC_EXPONENT:
                raise _fail(name, text, f"numeric exponent {sp.N(node.exp, 6)} is too large")


def _parse_expression(
    name: str, text: str, allowed_params: frozenset[str] | None
) -> tuple[sp.Expr, tuple[str, ...]]:
    if len(text) > _MAX_CHARS:
        raise _fail(name, text[:40] + "...", f"longer than {_MAX_CHARS} characters")
    identifiers = _screen_tokens(name, text)
    local: dict[str, object] = {"d": difficulty_symbol()}
    params: set[str] = set()
    for ident in identifiers:
        if ident in ("d", *FUNCTIONS, *_CONSTANTS):
            continue
        if ident in RESERVED:
            raise _fail(name, text, f"{ident!r} is reserved")
        if allowed_params is not None and ident not in allowed_params:
            listed = ", ".join(sorted(allowed_params)) or "none"
            raise _fail(
                name, text, f"unknown symbol {ident!r}; the allowed parameters are: {listed}"
            )
        local[ident] = parameter_symbol(ident)
        params.add(ident)
    namespace: dict[str, object] = {
        "__builtins__": {},
        "Integer": sp.Integer,
        "Float": sp.Float,
        "Rational": sp.Rational,
        "Add": sp.Add,
        "Mul": sp.Mul,
        "Pow": sp.Pow,
        **FUNCTIONS,
        **_CONSTANTS,
    }
    transformations = (*standard_transformations, convert_xor)
    try:
        raw = parse_expr(
            text,
            local_dict=local,
            global_dict=namespace,
            transformations=transformations,
            evaluate=False,
        )
        if not isinstance(raw, sp.Expr):
            raise TypeError(f"not an expression: {type(raw).__name__}")
        _check_numeric_powers(name, text, raw)
        expr = parse_expr(
            text, local_dict=local, global_dict=dict(namespace), transformations=transformations
        )
    except InvalidParameterError:
        raise
    except SyntaxError:
        raise _fail(name, text, "invalid syntax") from None
    except Exception as exc:  # sympy raises many kinds for malformed text
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(name, text, f"cannot parse: {why}") from None
    if not isinstance(expr, sp.Expr) or expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise _fail(name, text, "not a finite expression")
    if expr.atoms(sp.Function) - expr.atoms(sp.exp, sp.log):
        raise _fail(name, text, "it uses a function other than exp, log and sqrt")
    if not expr.has(difficulty_symbol()):
        raise _fail(name, text, "it does not depend on d")
    used = tuple(sorted(s.name for s in expr.free_symbols if s.name != "d"))
    return expr, used


def parse_curve(name: str, spec: str, *, allowed_params: Iterable[str] | None = None) -> Curve:
    """Parse K or T from a family name or an expression in ``d``.

    Parameters
    ----------
    name : {"K", "T"}
        Which curve (used in error messages and to pick the family's parameters).
    spec : str
        "power", "exp" or an expression in ``d``.
    allowed_params : iterable of str, optional
        When given, the only parameter names an expression may use; by default any
        identifier that is not ``d``, a function, a constant or one of :data:`RESERVED`.

    Raises
    ------
    InvalidParameterError
        The text is not an expression, uses something other than numbers, names, arithmetic
        and the allowed functions, uses a reserved or undeclared name, or does not involve d.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidParameterError(f"`{name}` must be {_allowed_text(name)}; got {spec!r}.")
    text = spec.strip()
    if text in FAMILIES[name]:
        expr = _family_expr(name, text)
        return Curve(name, text, text, expr, tuple(sorted(FAMILIES[name][text])))
    allowed = None if allowed_params is None else frozenset(allowed_params)
    expr, used = _parse_expression(name, text, allowed)
    return Curve(name, text, "expression", expr, used)
