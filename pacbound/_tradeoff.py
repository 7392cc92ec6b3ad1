"""The tradeoff B(d, n) = G_gen(K(d), n) + C T(d), derived symbolically.

:func:`derive_tradeoff` builds B from a generalisation term and two curves, derives the
first-order condition ∂B/∂d = 0, the cross derivative ∂²B/∂d∂n, the implicit-function-theorem
slope dd*/dn = -B_dn/B_dd and its sign, and d*(n) in closed form where it exists, and returns a
:class:`~pacbound._derivation.TradeoffDerivation` (printable as text or LaTeX, with vectorised
numpy callables). Derivations are cached by their specification.

Generalisation terms (A > 0 is the loss range, a free amplitude in the simplified forms):

- ``"mcallester"``: A sqrt((K + ln(2 sqrt(n)/δ))/(2n)) (McAllester with Maurer's constant);
  simplified: A sqrt(K/n), with which power-law and exponential curves have closed-form d*(n).
- ``"linear"``: the linear-lambda bound (Alquier) at its optimal λ* = sqrt(8n(K + ln 1/δ))/A,
  A sqrt((K + ln(1/δ))/(2n)) (see :func:`pacbound.optimal_lambda`); simplified: A sqrt(K/(2n)).

Closed forms (:mod:`pacbound._tradeoff_closed`). When log(∂G/∂d) - log(-C T'(d)) is linear in
ln d (power laws), in d (exponentials) or in both (Lambert W) and G is separable in n, the
condition is solved exactly: power laws K = k d^g, T = t d^-b give
d* = ((2bCt)/(gA sqrt(k)))^(1/(g/2+b)) n^(1/(g+2b)), exponentials K = k e^{ad}, T = t e^{-bd}
give d* = [ln n + 2 ln(2bCt/(aA sqrt(k)))]/(a+2b). Otherwise
:func:`sympy.solve` is tried in a child process under a time limit. Every closed form is checked
at random parameter points (first-order condition met, B_dd > 0) before it is accepted; when
none survives, d*(n) is numeric only (:mod:`pacbound._tradeoff_numeric`).

Signs. Everything is positive (d, n and all parameters); for the sign analysis n >= 1 and
0 < δ < 1 (written n = e^ν, δ = e^-ℓ with ν >= 0, ℓ > 0). A sign sympy cannot decide is decided
numerically on a grid at reference parameter values, and the derivation says so.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from pacbound._derivation import TradeoffDerivation, lambdify_tradeoff
from pacbound._tradeoff_closed import closed_form
from pacbound._tradeoff_numeric import (
    DEFAULT_D_RANGE,
    check_d_range,
    check_params,
    minimise_over_d,
)
from pacbound._tradeoff_parse import Curve, difficulty_symbol, parameter_symbol, parse_curve
from pacbound.exceptions import InvalidParameterError
from pacbound.support._validation import check_choice, check_in_interval

__all__ = ["GENS", "derive_tradeoff"]

#: The generalisation terms G_gen(K, n) that :func:`derive_tradeoff` knows.
GENS: tuple[str, ...] = ("mcallester", "linear")

_N_GRID = np.geomspace(10.0, 1e8, 15)
_MAX_SIMPLIFY_OPS = 400


def _n() -> sp.Symbol:
    return sp.Symbol("n", positive=True)


def _gen_term(gen: str, simplified: bool, K: sp.Expr) -> tuple[sp.Expr, str]:
    A, n, delta = parameter_symbol("A"), _n(), parameter_symbol("delta")
    if gen == "mcallester":
        if simplified:
            return A * sp.sqrt(K / n), "McAllester, simplified: A*sqrt(K/n)"
        return (
            A * sp.sqrt((K + sp.log(2 * sp.sqrt(n) / delta)) / (2 * n)),
            "McAllester (Maurer's constant): A*sqrt((K + ln(2*sqrt(n)/delta))/(2*n))",
        )
    if simplified:
        return A * sp.sqrt(K / (2 * n)), "linear-lambda at its optimal lambda, simplified: " + (
            "A*sqrt(K/(2*n))"
        )
    return (
        A * sp.sqrt((K + sp.log(1 / delta)) / (2 * n)),
        "linear-lambda (Alquier) at lambda* = sqrt(8n(K + ln(1/delta)))/A: "
        "A*sqrt((K + ln(1/delta))/(2*n)) (a lambda grid of k values: delta -> delta/k)",
    )


def _for_signs(expr: sp.Expr) -> sp.Expr:
    """Rewrite with n = e^ν (ν >= 0) and δ = e^-ℓ (ℓ > 0), so that sympy sees n >= 1, δ < 1."""
    nu, ell = sp.Symbol("nu", nonnegative=True), sp.Symbol("ell", positive=True)
    subs = {_n(): sp.exp(nu), parameter_symbol("delta"): sp.exp(-ell)}
    return sp.expand_log(expr.subs(subs), force=True)


def _sign(expr: sp.Expr) -> str | None:
    """Return "positive", "negative" or "zero" when sympy can decide it, else None."""
    candidates = [expr, _for_signs(expr)]
    if sp.count_ops(expr) <= _MAX_SIMPLIFY_OPS:
        candidates.append(sp.factor_terms(_for_signs(sp.simplify(expr))))
    for e in candidates:
        if e.is_zero:
            return "zero"
        if e.is_positive:
            return "positive"
        if e.is_negative:
            return "negative"
    return None


def _tidy(expr: sp.Expr) -> sp.Expr:
    return sp.simplify(expr) if sp.count_ops(expr) <= _MAX_SIMPLIFY_OPS else expr


def _reference(parameters: tuple[str, ...], given: Mapping[str, float]) -> dict[str, float]:
    ref = {p: (0.05 if p == "delta" else 1.0) for p in parameters}
    ref.update({k: v for k, v in given.items() if k in ref})
    return ref


def _numeric_sign(values: np.ndarray) -> str:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "undetermined"
    tol = 1e-12 * float(np.max(np.abs(values)) or 1.0)
    if np.all(np.abs(values) <= tol):
        return "zero"
    if np.all(values > 0):
        return "positive"
    if np.all(values < 0):
        return "negative"
    return "mixed"


def _params_key(params: Iterable[str] | None) -> tuple[str, ...] | None:
    if params is None:
        return None
    names = tuple(sorted({str(p) for p in params}))
    for name in names:
        if not name.isidentifier():
            raise InvalidParameterError(
                f"`params` must be parameter names (identifiers); got {name!r}."
            )
    return names


def derive_tradeoff(
    gen: str = "mcallester",
    K: str = "power",
    T: str = "power",
    *,
    simplified: bool = True,
    params: Iterable[str] | None = None,
    reference: Mapping[str, float] | None = None,
    d_range: tuple[float, float] | None = None,
    solve_timeout: float = 2.0,
) -> TradeoffDerivation:
    r"""Derive the difficulty/budget tradeoff B(d, n) = G_gen(K(d), n) + C T(d).

    Parameters
    ----------
    gen : {"mcallester", "linear"}, default "mcallester"
        The generalisation term (see the module docstring).
    K, T : str, default "power"
        K(d) (increasing) and T(d) (decreasing): "power" (K = k d^g, T = t d^-b), "exp"
        (K = k e^{a d}, T = t e^{-b d}) or an expression in ``d`` and parameters, such as
        ``K="k*d**2 + d"``, ``T="1/(1 + d)"`` (``^`` means power; functions exp, log/ln,
        sqrt). ``n``, ``A``, ``C`` and ``delta`` are reserved.
    simplified : bool, default True
        Drop the confidence term (and, for McAllester, the 1/2) from G_gen, leaving
        A sqrt(K/n): power and exponential curves then have closed-form d*(n).
    params : iterable of str, optional
        Restrict the parameter names an expression may use (default: any identifier).
    reference : mapping, optional
        Parameter values for the numeric checks, when a sign or an assumption cannot be
        decided symbolically (default 1 for every parameter and delta = 0.05).
    d_range : (float, float), optional
        The difficulty range of those numeric checks (default (1e-6, 1e6)).
    solve_timeout : float, default 2.0
        Seconds allowed to :func:`sympy.solve` when the condition is not log-linear (0: don't
        try).

    Returns
    -------
    TradeoffDerivation
        Expressions (B, the first-order condition, B_dn, dd*/dn, d*(n) or None), the sign of
        dd*/dn and how it was decided, and vectorised callables (``B``, ``d_star``, ...).

    Examples
    --------
    >>> from pacbound import derive_tradeoff
    >>> der = derive_tradeoff("mcallester", "power", "power")
    >>> der.d_star_expr
    n**(1/(2*b + g))*(2*C*b*t/(A*g*sqrt(k)))**(1/(b + g/2))
    >>> float(der.d_star(1e4, A=1, C=1, k=1, g=2, t=1, b=1))
    10.0
    """
    check_choice(gen, "gen", GENS)
    if not isinstance(simplified, bool):
        raise InvalidParameterError(f"`simplified` must be True or False; got {simplified!r}.")
    for name, value in (("K", K), ("T", T)):
        if not isinstance(value, str):
            raise InvalidParameterError(
                f"`{name}` must be 'power', 'exp' or an expression in d (a string); got {value!r}."
            )
    timeout = float(check_in_interval(solve_timeout, "solve_timeout", 0.0, 600.0))
    ref = tuple(sorted((str(k), float(v)) for k, v in (reference or {}).items()))
    rng = DEFAULT_D_RANGE if d_range is None else check_d_range(d_range)
    return _derive(gen, K.strip(), T.strip(), simplified, _params_key(params), ref, rng, timeout)


@dataclass(frozen=True, eq=False)
class _Core:
    """The symbolic part of a derivation: independent of reference values and d range."""

    K: Curve
    T: Curve
    gen_text: str
    parameters: tuple[str, ...]
    G: sp.Expr
    B: sp.Expr
    foc: sp.Eq
    B_dd: sp.Expr
    cross: sp.Expr
    ift: sp.Expr
    fns: dict[str, Any]
    d_star: sp.Expr | None
    method: str
    dd_dn: sp.Expr | None
    elasticity: sp.Expr | None
    cross_sign: str | None
    sign: str | None
    sign_how: str
    assumptions: tuple[tuple[str, str, str, bool], ...]  # statement, fn key, wanted, shown
    notes: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _core(
    gen: str,
    K_spec: str,
    T_spec: str,
    simplified: bool,
    allowed: tuple[str, ...] | None,
    timeout: float,
) -> _Core:
    K = parse_curve("K", K_spec, allowed_params=allowed)
    T = parse_curve("T", T_spec, allowed_params=allowed)
    d, n, C = difficulty_symbol(), _n(), parameter_symbol("C")
    G, gen_text = _gen_term(gen, simplified, K.expr)
    B = G + C * T.expr
    names = {*K.parameters, *T.parameters}
    parameters = ("A", "C", *sorted(names), *(() if simplified else ("delta",)))
    lhs, rhs = sp.diff(G, d), -C * sp.diff(T.expr, d)
    B_dd = sp.diff(B, d, 2)
    cross = _tidy(sp.diff(B, d, n))
    ift = -sp.diff(B, d, n) / B_dd
    dK, dT = sp.diff(K.expr, d), sp.diff(T.expr, d)
    fns = lambdify_tradeoff(
        parameters,
        B=B,
        foc=sp.diff(B, d),
        lhs=lhs,
        rhs=rhs,
        B_dd=B_dd,
        B_dn=cross,
        ift=ift,
        K=K.expr,
        dK=dK,
        dT=dT,
    )
    d_star, method, notes = closed_form(lhs, rhs, d, fns, parameters, timeout)
    dd_dn = elasticity = None
    if d_star is not None:
        dd_dn = _tidy(sp.diff(d_star, n))
        elasticity = _tidy(n * dd_dn / d_star)
        fns.update(lambdify_tradeoff(parameters, d_star=d_star, dd_dn=dd_dn, by_n=True))
    cross_sign = _sign(cross)
    sign, sign_how = None, ""
    if dd_dn is not None:
        sign = _sign(dd_dn)
        sign_how = "symbolic (derivative of the closed form d*(n))"
    if sign is None and cross_sign in ("negative", "positive"):
        sign = "positive" if cross_sign == "negative" else "negative"
        sign_how = (
            f"symbolic (implicit function theorem: B_dn is {cross_sign} and B_dd > 0 at an "
            "interior minimum; Topkis)"
        )
    checks = (
        ("K(d) > 0", "K", "positive", K.expr),
        ("K'(d) > 0 (K increasing)", "dK", "positive", dK),
        ("T'(d) < 0 (T decreasing)", "dT", "negative", dT),
    )
    assumptions = tuple((s, key, want, _sign(e) == want) for s, key, want, e in checks)
    foc = sp.Eq(lhs, rhs)
    if isinstance(foc, sp.logic.boolalg.BooleanAtom):
        # sympy decided G_d = -C T_d outright: never (the two sides have opposite signs for
        # every d > 0) or always (B does not depend on d); either way no interior optimum
        failed = [s for s, _, _, ok in assumptions if not ok]
        why = (
            f"{', '.join(failed)} does not hold" if failed else
            "the two sides have opposite signs for every d > 0"
        ) if foc == sp.false else "B(d, n) does not depend on d"
        raise InvalidParameterError(
            f"B(d, n) = {B} has no interior optimum in d: the first-order condition "
            f"{lhs} = {rhs} has no solution d > 0 ({why}); `--K` must be increasing and "
            f"`--T` decreasing in d; got K = {K.expr}, T = {T.expr}."
        )
    return _Core(
        K, T, gen_text, parameters, G, B, foc, B_dd, cross, ift, fns, d_star,
        method, dd_dn, elasticity, cross_sign, sign, sign_how, assumptions, tuple(notes),
    )  # fmt: skip


def _check_assumptions(
    core: _Core, ref_values: tuple[float, ...], d_range: tuple[float, float]
) -> tuple[tuple[str, str], ...]:
    lo, hi = d_range
    grid = np.geomspace(max(lo, 1e-3), min(hi, 1e3), 257) if lo > 0 else np.linspace(lo, hi, 257)
    where = f"d in [{grid[0]:g}, {grid[-1]:g}] at the reference parameters"
    out = []
    for statement, key, want, shown in core.assumptions:
        if shown:
            out.append((statement, "shown symbolically (all symbols positive)"))
            continue
        with np.errstate(all="ignore"):
            y = np.broadcast_to(
                np.asarray(core.fns[key](grid, 1.0, *ref_values), float), grid.shape
            )
        ok = (y > 0) if want == "positive" else (y < 0)
        if ok.all():
            out.append((statement, f"not decided symbolically; holds numerically for {where}"))
        else:
            bad = float(grid[np.flatnonzero(~ok)[0]])
            out.append((statement, f"VIOLATED at d = {bad:g} ({where})"))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _derive(
    gen: str,
    K_spec: str,
    T_spec: str,
    simplified: bool,
    allowed: tuple[str, ...] | None,
    reference: tuple[tuple[str, float], ...],
    d_range: tuple[float, float],
    timeout: float,
) -> TradeoffDerivation:
    core = _core(gen, K_spec, T_spec, simplified, allowed, timeout)
    parameters, fns, notes = core.parameters, core.fns, list(core.notes)
    ref_values = check_params(parameters, _reference(parameters, dict(reference)))
    ref = dict(zip(parameters, ref_values, strict=True))
    grid_text = (
        f"n in [{_N_GRID[0]:g}, {_N_GRID[-1]:g}] ({_N_GRID.size} budgets), d_range "
        f"[{d_range[0]:g}, {d_range[1]:g}], reference parameters "
        + ", ".join(f"{k}={v:g}" for k, v in ref.items())
    )
    cross_sign, cross_how = core.cross_sign, "symbolic"
    if cross_sign is None:
        lo, hi = d_range
        dg = np.geomspace(lo, hi, 97) if lo > 0 else np.linspace(lo, hi, 97)
        with np.errstate(all="ignore"):
            vals = np.asarray(fns["B_dn"](dg[None, :], _N_GRID[:, None], *ref_values), float)
        cross_sign, cross_how = _numeric_sign(vals.ravel()), f"numeric grid ({grid_text})"
        notes.append("The sign of the cross derivative could not be decided symbolically.")
    sign, sign_how = core.sign, core.sign_how
    if sign is None:
        sol = _solve_numeric(fns, parameters, ref_values, d_range)
        sign = _numeric_sign(sol[1][sol[2]])
        sign_how = f"numeric: dd*/dn at d*(n) on a grid ({grid_text})"
        notes.append("The sign of dd*/dn could not be decided symbolically.")
    return TradeoffDerivation(
        gen=gen,
        simplified=simplified,
        gen_description=core.gen_text,
        K_curve=core.K,
        T_curve=core.T,
        parameters=parameters,
        G_expr=core.G,
        B_expr=core.B,
        foc_expr=core.foc,
        B_dd_expr=core.B_dd,
        cross_expr=core.cross,
        cross_sign=cross_sign,
        cross_sign_method=cross_how,
        dd_dn_ift_expr=core.ift,
        d_star_expr=core.d_star,
        dd_dn_expr=core.dd_dn,
        elasticity_expr=core.elasticity,
        closed_form_method=core.method,
        dd_dn_sign=sign,
        sign_method=sign_how,
        assumptions=_check_assumptions(core, ref_values, d_range),
        notes=tuple(notes),
        reference=ref,
        fns=fns,
    )


def _solve_numeric(
    fns: dict[str, Any],
    parameters: tuple[str, ...],
    values: tuple[float, ...],
    d_range: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d_star, bracketed, _ = minimise_over_d(fns["B"], fns["foc"], _N_GRID, values, d_range)
    with np.errstate(all="ignore"):
        slope = np.asarray(fns["ift"](d_star, _N_GRID, *values), float)
    return d_star, np.broadcast_to(slope, d_star.shape), bracketed
