"""The result of :func:`pacbound.derive_tradeoff`: expressions, signs, callables and renderings.

A :class:`TradeoffDerivation` holds the sympy expressions of the tradeoff B(d, n) = G_gen(K(d), n)
+ C T(d) (first-order condition, cross derivative, dd*/dn, d*(n) when it has a closed form), how
each sign was decided, and numpy callables made with :func:`sympy.lambdify`, so that B, ∂B/∂d and
d*(n) can be evaluated on arrays. It prints the derivation as plain text (``str``), LaTeX
(:meth:`~TradeoffDerivation.as_latex`) or JSON-safe plain objects
(:meth:`~TradeoffDerivation.to_dict`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike, NDArray

from pacbound._tradeoff_numeric import (
    DEFAULT_D_RANGE,
    DEFAULT_GRID_SIZE,
    DStarSolution,
    as_budgets,
    check_d_range,
    check_params,
    minimise_over_d,
)
from pacbound._tradeoff_parse import Curve, difficulty_symbol, parameter_symbol
from pacbound.exceptions import InvalidParameterError
from pacbound.support._validation import check_choice

__all__ = ["TradeoffDerivation", "lambdify_tradeoff"]

_MONOTONE = {
    "positive": "increasing",
    "negative": "decreasing",
    "zero": "constant",
    "mixed": "not monotone",
    "undetermined": "undetermined",
}


def lambdify_tradeoff(
    parameters: Sequence[str], *, by_n: bool = False, **exprs: sp.Expr
) -> dict[str, Callable[..., Any]]:
    """Vectorised numpy functions ``f(d, n, *params)`` (``f(n, *params)`` when ``by_n``)."""
    n = sp.Symbol("n", positive=True)
    head = [n] if by_n else [difficulty_symbol(), n]
    args = [*head, *(parameter_symbol(p) for p in parameters)]
    return {k: sp.lambdify(args, e, modules=["scipy", "numpy"]) for k, e in exprs.items()}


def _eq_text(eq: sp.Eq) -> str:
    return f"{eq.lhs} = {eq.rhs}"


def _eq_latex(eq: sp.Eq) -> str:
    return f"{sp.latex(eq.lhs)} = {sp.latex(eq.rhs)}"


@dataclass(frozen=True, eq=False)
class TradeoffDerivation:
    r"""The tradeoff B(d, n) = G_gen(K(d), n) + C T(d), derived.

    Attributes
    ----------
    gen : str
        "mcallester" or "linear".
    simplified : bool
        Whether G_gen dropped its confidence term (A sqrt(K/n) for McAllester).
    gen_description : str
        G_gen in words and symbols.
    K_curve, T_curve : Curve
        The parsed curves (spec, family, expression, parameters); see ``K_expr``/``T_expr``.
    parameters : tuple of str
        The free parameters of B, in the order the callables take them: A, C, the curve
        parameters (sorted), then delta when G_gen keeps its confidence term.
    G_expr, B_expr : sympy.Expr
        G_gen(K(d), n) and B(d, n).
    foc_expr : sympy.Eq
        The first-order condition ∂G_gen/∂d = -C T'(d) (that is, ∂B/∂d = 0).
    B_dd_expr : sympy.Expr
        ∂²B/∂d².
    cross_expr : sympy.Expr
        The cross derivative ∂²B/∂d∂n.
    cross_sign, cross_sign_method : str
        Its sign ("negative": decreasing differences, so argmin_d B is non-decreasing in n by
        Topkis' theorem) and how it was decided ("symbolic" or "numeric grid (...)").
    dd_dn_ift_expr : sympy.Expr
        dd*/dn = -B_dn/B_dd by the implicit function theorem, a function of (d, n) to be taken
        at d = d*(n).
    d_star_expr : sympy.Expr or None
        d*(n) in closed form, or None when it is numeric only.
    dd_dn_expr, elasticity_expr : sympy.Expr or None
        The derivative of the closed form and the elasticity d ln d*/d ln n.
    closed_form_method : str
        How d*(n) was solved ("exact: ...", "sympy.solve" or "none").
    dd_dn_sign, sign_method : str
        The sign of dd*/dn ("positive", "negative", "zero", "mixed" or "undetermined") and how
        it was decided.
    assumptions : tuple of (str, str)
        Each assumption of the analysis and whether it was shown, checked numerically or
        violated.
    notes : tuple of str
        Anything else the reader should know (solver messages, numeric fallbacks).
    reference : dict
        The parameter values used by the numeric checks.
    """

    gen: str
    simplified: bool
    gen_description: str
    K_curve: Curve
    T_curve: Curve
    parameters: tuple[str, ...]
    G_expr: sp.Expr
    B_expr: sp.Expr
    foc_expr: sp.Eq
    B_dd_expr: sp.Expr
    cross_expr: sp.Expr
    cross_sign: str
    cross_sign_method: str
    dd_dn_ift_expr: sp.Expr
    d_star_expr: sp.Expr | None
    dd_dn_expr: sp.Expr | None
    elasticity_expr: sp.Expr | None
    closed_form_method: str
    dd_dn_sign: str
    sign_method: str
    assumptions: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    reference: dict[str, float]
    fns: dict[str, Callable[..., Any]] = field(repr=False)

    # ----------------------------------------------------------------- convenience views
    @property
    def K_expr(self) -> sp.Expr:
        """K(d) as a sympy expression."""
        return self.K_curve.expr

    @property
    def T_expr(self) -> sp.Expr:
        """T(d) as a sympy expression."""
        return self.T_curve.expr

    @property
    def has_closed_form(self) -> bool:
        """Whether d*(n) has a closed form."""
        return self.d_star_expr is not None

    @property
    def monotone_in_n(self) -> str:
        """How d*(n) moves with n: "increasing", "decreasing", "constant", "not monotone" or
        "undetermined"."""
        return _MONOTONE[self.dd_dn_sign]

    # ----------------------------------------------------------------- numeric evaluation
    def _values(self, params: dict[str, Any]) -> tuple[float, ...]:
        return check_params(self.parameters, params)

    def _evaluate(
        self, name: str, d: ArrayLike, n: ArrayLike, params: dict[str, Any]
    ) -> NDArray[np.float64]:
        """The lambdified function ``name`` at (d, n), broadcast, as a new float64 array."""
        values = self._values(params)
        d_arr, n_arr = np.asarray(d, float), np.asarray(n, float)
        with np.errstate(all="ignore"):
            out = np.asarray(self.fns[name](d_arr, n_arr, *values), float)
        return np.broadcast_to(out, np.broadcast(d_arr, n_arr).shape).copy()

    def B(self, d: ArrayLike, n: ArrayLike, **params: float) -> NDArray[np.float64]:
        """B(d, n) at the given parameter values (broadcasting d against n)."""
        return self._evaluate("B", d, n, params)

    def foc(self, d: ArrayLike, n: ArrayLike, **params: float) -> NDArray[np.float64]:
        """∂B/∂d(d, n): zero at d*(n)."""
        return self._evaluate("foc", d, n, params)

    def solve(
        self,
        n: ArrayLike,
        *,
        d_range: tuple[float, float] | None = None,
        method: str = "auto",
        grid_size: int = DEFAULT_GRID_SIZE,
        **params: float,
    ) -> DStarSolution:
        """d*(n) for every budget, with a flag for minimisers on the edge of the range.

        Parameters
        ----------
        n : array_like
            Budgets (positive).
        d_range : (float, float), optional
            The difficulty range. The numeric search uses it (default (1e-6, 1e6)); a closed
            form is checked against it when it is given (and against d > 0 always).
        method : {"auto", "closed", "numeric"}, default "auto"
            "auto" uses the closed form when there is one.
        grid_size : int, default 513
            Grid points of the numeric search before the root is polished.
        **params : float
            A value for every name in :attr:`parameters`.
        """
        check_choice(method, "method", ("auto", "closed", "numeric"))
        values = self._values(params)
        nn, _ = as_budgets(n)
        rng = None if d_range is None else check_d_range(d_range)
        named = dict(zip(self.parameters, values, strict=True))
        if method == "closed" and not self.has_closed_form:
            raise InvalidParameterError(
                "`method` must be 'auto' or 'numeric' for a tradeoff without a closed-form "
                "d*(n); got 'closed'."
            )
        with np.errstate(all="ignore"):
            if self.has_closed_form and method != "numeric":
                d_star = _real_values(self.fns["d_star"](nn, *values), nn.shape)
                ok = np.isfinite(d_star) & (d_star > 0)
                if rng is not None:
                    ok &= (d_star >= rng[0]) & (d_star <= rng[1])
                slope = _real_values(self.fns["dd_dn"](nn, *values), nn.shape)
                kind = "closed form"
            else:
                rng = rng or DEFAULT_D_RANGE
                d_star, ok, _ = minimise_over_d(
                    self.fns["B"], self.fns["foc"], nn, values, rng, grid_size=grid_size
                )
                slope = np.broadcast_to(self.fns["ift"](d_star, nn, *values), nn.shape)
                kind = "numeric"
            B_min = np.broadcast_to(np.asarray(self.fns["B"](d_star, nn, *values)), nn.shape)
        return DStarSolution(
            n=nn,
            d_star=np.asarray(d_star, float),
            bracketed=np.asarray(ok, bool),
            B_min=np.asarray(B_min, float),
            dd_dn=np.asarray(slope, float),
            method=kind,
            d_range=rng,
            params=named,
        )

    def d_star(
        self,
        n: ArrayLike,
        *,
        d_range: tuple[float, float] | None = None,
        on_edge: str = "raise",
        method: str = "auto",
        **params: float,
    ) -> NDArray[np.float64]:
        """d*(n) = argmin_d B(d, n), shaped like ``n`` (closed form when available).

        Parameters
        ----------
        on_edge : {"raise", "nan", "edge"}, default "raise"
            What to do where the minimiser is not bracketed (on the edge of ``d_range``, or a
            closed form outside d > 0): raise :class:`~pacbound.exceptions.InvalidParameterError`,
            return NaN there, or return the edge value.

        See :meth:`solve` for the other arguments.
        """
        check_choice(on_edge, "on_edge", ("raise", "nan", "edge"))
        _, shape = as_budgets(n)
        sol = self.solve(n, d_range=d_range, method=method, **params)
        out = sol.d_star.copy()
        if not sol.bracketed.all():
            first = int(np.flatnonzero(~sol.bracketed)[0])
            if on_edge == "raise":
                raise _edge_error(sol, first)
            if on_edge == "nan":
                out[~sol.bracketed] = np.nan
        return out.reshape(shape)

    def dd_dn(
        self, n: ArrayLike, *, d_range: tuple[float, float] | None = None, **params: float
    ) -> NDArray[np.float64]:
        """dd*/dn at each budget (NaN where d* is not bracketed), shaped like ``n``."""
        _, shape = as_budgets(n)
        sol = self.solve(n, d_range=d_range, **params)
        return np.where(sol.bracketed, sol.dd_dn, np.nan).reshape(shape)

    # ----------------------------------------------------------------- renderings
    def as_text(self) -> str:
        """The derivation in plain text (sympy's one-line notation)."""
        K, T = self.K_curve, self.T_curve
        lines = [
            "Tradeoff B(d, n) = G_gen(K(d), n) + C*T(d)",
            f"  G_gen: {self.gen_description}",
            f"  K(d) = {K.expr}   ({_family_text(K)})",
            f"  T(d) = {T.expr}   ({_family_text(T)})",
            f"  parameters: {', '.join(self.parameters)} (all positive; d > 0, n >= 1"
            + ("" if self.simplified else ", 0 < delta < 1")
            + ")",
            "Assumptions",
            *(f"  {statement}: {status}" for statement, status in self.assumptions),
            f"B(d, n) = {self.B_expr}",
            "First-order condition dB/dd = 0:",
            f"  {_eq_text(self.foc_expr)}",
            f"Cross derivative d2B/(dd dn) = {self.cross_expr}",
            f"  sign: {self.cross_sign} ({self.cross_sign_method})" + _topkis(self.cross_sign),
            "Implicit function theorem: dd*/dn = -B_dn/B_dd at d = d*(n)",
            f"  = {self.dd_dn_ift_expr}",
        ]
        if self.d_star_expr is not None:
            lines += [
                f"Closed form ({self.closed_form_method}):",
                f"  d*(n) = {self.d_star_expr}",
                f"  dd*/dn = {self.dd_dn_expr}",
                f"  elasticity d ln d*/d ln n = {self.elasticity_expr}",
            ]
        else:
            lines.append(
                "d*(n): numeric only (no closed form); a bounded search gives it: "
                "d_star(n, **params), or --n with --param on the command line"
            )
        lines.append(
            f"Sign of dd*/dn: {self.dd_dn_sign} ({self.sign_method}); d*(n) is "
            f"{self.monotone_in_n} in n"
        )
        if self.notes:
            lines += ["Notes", *(f"  - {note}" for note in self.notes)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def as_latex(self) -> str:
        """The derivation as a LaTeX ``align*`` block, one relation per line."""
        foc = self.foc_expr
        rows = [
            ("B(d, n)", sp.latex(self.B_expr)),
            ("K(d)", sp.latex(self.K_expr)),
            ("T(d)", sp.latex(self.T_expr)),
            (sp.latex(foc.lhs), sp.latex(foc.rhs) + r" \quad \text{(first-order condition)}"),
            (
                r"\frac{\partial^2 B}{\partial d\,\partial n}",
                sp.latex(self.cross_expr) + rf" \quad \text{{({self.cross_sign})}}",
            ),
            (
                r"\frac{d d^*}{d n}",
                r"-\frac{B_{dn}}{B_{dd}} = " + sp.latex(self.dd_dn_ift_expr),
            ),
        ]
        if self.d_star_expr is not None:
            rows += [
                ("d^*(n)", sp.latex(self.d_star_expr)),
                (
                    r"\frac{d d^*}{d n}",
                    sp.latex(self.dd_dn_expr) + rf" \quad \text{{({self.dd_dn_sign})}}",
                ),
                (r"\frac{d \ln d^*}{d \ln n}", sp.latex(self.elasticity_expr)),
            ]
        else:
            rows.append(
                ("d^*(n)", rf"\text{{numeric only; }} d d^*/d n \text{{ is {self.dd_dn_sign}}}")
            )
        body = " \\\\\n".join(f"{left} &= {right}" for left, right in rows)
        return "\\begin{align*}\n" + body + "\n\\end{align*}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain objects with stable keys: every expression as a string and LaTeX."""

        def both(key: str, expr: sp.Basic | None) -> dict[str, str | None]:
            if expr is None:
                return {key: None, f"{key}_latex": None}
            return {key: str(expr), f"{key}_latex": sp.latex(expr)}

        out: dict[str, Any] = {
            "gen": self.gen,
            "simplified": self.simplified,
            "gen_description": self.gen_description,
            "K": self.K_curve.spec,
            "T": self.T_curve.spec,
            "K_family": self.K_curve.family,
            "T_family": self.T_curve.family,
            **both("K_expr", self.K_expr),
            **both("T_expr", self.T_expr),
            "parameters": list(self.parameters),
            "assumptions": [{"statement": s, "status": t} for s, t in self.assumptions],
            **both("G", self.G_expr),
            **both("B", self.B_expr),
            "foc": _eq_text(self.foc_expr),
            "foc_latex": _eq_latex(self.foc_expr),
            **both("cross_derivative", self.cross_expr),
            "cross_derivative_sign": self.cross_sign,
            "cross_derivative_method": self.cross_sign_method,
            **both("dd_dn", self.dd_dn_ift_expr),
            **both("d_star", self.d_star_expr),
            "closed_form_method": self.closed_form_method,
            **both("dd_dn_closed", self.dd_dn_expr),
            **both("elasticity", self.elasticity_expr),
            "dd_dn_sign": self.dd_dn_sign,
            "sign_method": self.sign_method,
            "monotone_in_n": self.monotone_in_n,
            "reference": dict(self.reference),
            "notes": list(self.notes),
        }
        return out


def _real_values(values: Any, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """A lambdified closed form's values as floats: NaN where it leaves the reals."""
    arr = np.broadcast_to(np.asarray(values), shape)
    if not np.iscomplexobj(arr):
        return arr.astype(float)
    return np.where(np.abs(arr.imag) <= 1e-12 * np.abs(arr.real), arr.real, np.nan)


def _family_text(curve: Curve) -> str:
    return "a user expression" if curve.family == "expression" else f"{curve.family} family"


def _topkis(sign: str) -> str:
    if sign == "negative":
        return (
            "\n  B has decreasing differences in (d, n): by Topkis' theorem argmin_d B(d, n)"
            " is non-decreasing in n"
        )
    if sign == "positive":
        return (
            "\n  B has increasing differences in (d, n): argmin_d B(d, n) is non-increasing"
            " in n (Topkis)"
        )
    return ""


def _edge_error(sol: DStarSolution, i: int) -> InvalidParameterError:
    n, d = float(sol.n[i]), float(sol.d_star[i])
    if sol.method == "numeric":
        lo, hi = sol.d_range or DEFAULT_D_RANGE
        return InvalidParameterError(
            f"`d_range` must bracket the minimiser of B(d, n); got ({lo:g}, {hi:g}), and at "
            f"n = {n:g} the minimum is on its edge (d = {d:g}), not bracketed. Widen "
            "`d_range`, or pass on_edge='nan' or 'edge'."
        )
    where = "d > 0" if sol.d_range is None else f"[{sol.d_range[0]:g}, {sol.d_range[1]:g}]"
    return InvalidParameterError(
        f"`n` must give a d*(n) inside {where}; got n = {n:g}, where the closed form gives "
        f"d = {d:g}, so the minimiser is not bracketed. Pass on_edge='nan' or 'edge' to keep "
        "the other values."
    )
