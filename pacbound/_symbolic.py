"""The PAC-Bayes bounds as sympy expressions, and the optimal-lambda derivations.

Every function returns an expression in the named symbols of :data:`BOUND_SYMBOLS`
(``q`` the empirical Gibbs risk, ``KL`` = KL(Q‖P), ``n``, ``delta``, ``lambda``, ``C`` the
Catoni constant, ``B`` the loss range, ``sigma`` the sub-Gaussian scale, ``A`` Thiemann's
complexity term, ``p`` the true risk and ``c`` a kl budget), so that an expression can be
differentiated, substituted into or turned into a vectorised numpy function with
:func:`sympy.lambdify`; the numeric functions of :mod:`pacbound` compute the same quantities
(tested to agree at rtol 1e-10).

kl⁻¹ has no closed form: :func:`kl_bound_relation` exposes the bound as the implicit relation
kl(q‖p) <= c that defines it, and :func:`kl_inverse_edges` derives the two closed forms that
do exist (q = 0 and q = 1). :func:`optimal_lambda` derives, with sympy, the minimiser over
lambda of the linear-lambda bound (Alquier 2021, Thm 2.1) and of Thiemann et al.'s f_lambda,
and the value there.

This module imports sympy; :mod:`pacbound` loads it only when one of its names is first used.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from pacbound.support._validation import check_choice, check_positive_int

__all__ = [
    "BOUND_SYMBOLS",
    "LambdaOptimum",
    "catoni_expr",
    "f_quad_expr",
    "kl_bernoulli_expr",
    "kl_bound_relation",
    "kl_inverse_edges",
    "linear_lambda_expr",
    "mcallester_expr",
    "optimal_lambda",
    "thiemann_complexity_expr",
    "thiemann_expr",
]

_q = sp.Symbol("q", nonnegative=True)
_p = sp.Symbol("p", positive=True)
_KL = sp.Symbol("KL", nonnegative=True)
_n = sp.Symbol("n", positive=True)
_delta = sp.Symbol("delta", positive=True)
_lam = sp.Symbol("lambda", positive=True)
_C = sp.Symbol("C", positive=True)
_B = sp.Symbol("B", positive=True)
_sigma = sp.Symbol("sigma", positive=True)
_A = sp.Symbol("A", positive=True)
_c = sp.Symbol("c", nonnegative=True)

#: The named symbols every expression of this module is written in (read-only mapping).
BOUND_SYMBOLS: Mapping[str, sp.Symbol] = types.MappingProxyType(
    {
        "q": _q,
        "p": _p,
        "KL": _KL,
        "n": _n,
        "delta": _delta,
        "lambda": _lam,
        "C": _C,
        "B": _B,
        "sigma": _sigma,
        "A": _A,
        "c": _c,
    }
)

#: LaTeX names for the symbols whose default rendering is not the usual one.
LATEX_NAMES: Mapping[sp.Symbol, str] = types.MappingProxyType({_KL: r"\mathrm{KL}"})


def _latex(expr: sp.Basic) -> str:
    return sp.latex(expr, symbol_names=dict(LATEX_NAMES))


def _grid_log(grid_size: int) -> sp.Expr:
    """ln(k/δ): the confidence term of a union bound over a grid of ``k`` values."""
    k = check_positive_int(grid_size, "grid_size")
    return sp.log(sp.Integer(k) / _delta)


def kl_bernoulli_expr() -> sp.Expr:
    r"""Binary kl divergence kl(q‖p) as a sympy expression.

    .. math:: \mathrm{kl}(q\|p) = q \ln\frac{q}{p} + (1-q)\ln\frac{1-q}{1-p}

    At q in {0, 1} the term with the vanishing factor is 0 (0 ln 0 = 0); the expression is
    written for 0 < q < 1 (substitute and take the limit at the edges).
    """
    return _q * sp.log(_q / _p) + (1 - _q) * sp.log((1 - _q) / (1 - _p))


def mcallester_expr() -> sp.Expr:
    r"""McAllester's bound with Maurer's constant (loss in [0, 1], n >= 8).

    .. math:: R(Q) \le q + \sqrt{\frac{\mathrm{KL} + \ln(2\sqrt{n}/\delta)}{2n}}
    """
    return _q + sp.sqrt((_KL + sp.log(2 * sp.sqrt(_n) / _delta)) / (2 * _n))


def _xi(xi: str) -> sp.Expr:
    check_choice(xi, "xi", ("2sqrt", "exact", "n+1"))
    if xi == "2sqrt":
        return 2 * sp.sqrt(_n)
    if xi == "n+1":
        return _n + 1
    j = sp.Symbol("j", integer=True, nonnegative=True)
    return sp.Sum(sp.binomial(_n, j) * (j / _n) ** j * (1 - j / _n) ** (_n - j), (j, 0, _n))


def kl_bound_relation(*, xi: str = "2sqrt") -> sp.Rel:
    r"""The PAC-Bayes-kl bound (Langford–Seeger–Maurer) as the implicit relation defining it.

    .. math:: \mathrm{kl}(q\|p) \le \frac{\mathrm{KL} + \ln(\xi(n)/\delta)}{n}

    The bound on the true risk ``p`` is the largest ``p`` satisfying the relation, i.e.
    kl⁻¹(q, c) with c the right-hand side; kl⁻¹ has no closed form in general (see
    :func:`kl_inverse_edges` for q in {0, 1}), so it is exposed as this relation.

    Parameters
    ----------
    xi : {"2sqrt", "exact", "n+1"}, default "2sqrt"
        ξ(n): Maurer's 2 sqrt(n), the exact sum Σ_j C(n, j)(j/n)^j(1 - j/n)^(n-j) (a sympy
        ``Sum``; substitute an integer n and ``doit()``), or Seeger's n + 1.
    """
    return sp.Le(kl_bernoulli_expr(), (_KL + sp.log(_xi(xi) / _delta)) / _n)


@functools.lru_cache(maxsize=1)
def _kl_inverse_edges() -> tuple[sp.Expr, sp.Expr]:
    p = sp.Symbol("p", positive=True)
    at_0 = -sp.log(1 - p)  # the limit of kl(q‖p) as q -> 0 (q ln q -> 0)
    at_1 = -sp.log(p)  # the limit as q -> 1
    upper = [s for s in sp.solve(sp.Eq(at_0, _c), p) if s.is_positive is not False]
    lower = [s for s in sp.solve(sp.Eq(at_1, _c), p) if s.is_positive is not False]
    return upper[0], lower[0]


def kl_inverse_edges() -> dict[str, sp.Expr]:
    r"""Derive the closed forms of kl⁻¹ at q = 0 (upper inverse) and q = 1 (lower inverse).

    At q = 0, kl(0‖p) = -ln(1-p), so kl(0‖p) = c gives p = 1 - e^{-c}; at q = 1,
    kl(1‖p) = -ln p, so p = e^{-c}. Both are solved with :func:`sympy.solve` in the symbol
    ``c`` of :data:`BOUND_SYMBOLS`.

    Returns
    -------
    dict
        ``{"upper at q=0": 1 - exp(-c), "lower at q=1": exp(-c)}``.
    """
    upper, lower = _kl_inverse_edges()
    return {"upper at q=0": upper, "lower at q=1": lower}


def catoni_expr(*, grid_size: int = 1) -> sp.Expr:
    r"""Catoni's bound for a constant C fixed in advance (or on a grid of ``grid_size`` values).

    .. math:: R(Q) \le \frac{1 - \exp\!\left(-C q - \frac{\mathrm{KL} + \ln(k/\delta)}{n}\right)}
              {1 - e^{-C}}

    with k = ``grid_size`` (k = 1: C fixed in advance, no union bound).
    """
    b = (_KL + _grid_log(grid_size)) / _n
    return (1 - sp.exp(-_C * _q - b)) / (1 - sp.exp(-_C))


def linear_lambda_expr(*, sub_gaussian: bool = False, grid_size: int = 1) -> sp.Expr:
    r"""The linear-in-lambda bound (Alquier 2021, Thm 2.1) for a lambda fixed in advance.

    Bounded loss in [0, B]:

    .. math:: R(Q) \le q + \frac{\lambda B^2}{8n} + \frac{\mathrm{KL} + \ln(k/\delta)}{\lambda}

    σ²-sub-Gaussian loss (``sub_gaussian=True``): B²/8 becomes σ²/2. k = ``grid_size``.
    """
    scale = _sigma**2 / 2 if sub_gaussian else _B**2 / 8
    return _q + _lam * scale / _n + (_KL + _grid_log(grid_size)) / _lam


def thiemann_complexity_expr() -> sp.Expr:
    r"""Thiemann's complexity term A = (KL + ln(2 sqrt(n)/δ)) / (2n)."""
    return (_KL + sp.log(2 * sp.sqrt(_n) / _delta)) / (2 * _n)


def thiemann_expr(*, in_terms_of_A: bool = True) -> sp.Expr:
    r"""Thiemann et al.'s f_lambda, valid for all lambda in (0, 2) at once (no union bound).

    .. math:: f_\lambda = \frac{q}{1 - \lambda/2} + \frac{2A}{\lambda(1 - \lambda/2)},
              \qquad A = \frac{\mathrm{KL} + \ln(2\sqrt{n}/\delta)}{2n}

    Parameters
    ----------
    in_terms_of_A : bool, default True
        Keep the symbol ``A``; False substitutes its definition in KL, n and delta.
    """
    expr = _q / (1 - _lam / 2) + 2 * _A / (_lam * (1 - _lam / 2))
    return expr if in_terms_of_A else expr.subs(_A, thiemann_complexity_expr())


def f_quad_expr(*, in_terms_of_A: bool = True) -> sp.Expr:
    r"""f_quad = (sqrt(q + A) + sqrt(A))², the minimum of :func:`thiemann_expr` over lambda."""
    expr = (sp.sqrt(_q + _A) + sp.sqrt(_A)) ** 2
    return expr if in_terms_of_A else expr.subs(_A, thiemann_complexity_expr())


@dataclass(frozen=True, eq=False)
class LambdaOptimum:
    r"""The minimiser over lambda of a PAC-Bayes bound, derived with sympy.

    Attributes
    ----------
    bound : str
        "linear" (Alquier's linear-lambda bound, loss in [0, B]), "linear sub-Gaussian" or
        "thiemann" (f_lambda).
    objective : sympy.Expr
        The bound as a function of lambda.
    derivative : sympy.Expr
        ∂objective/∂lambda; lambda* is its root.
    lambda_star : sympy.Expr
        The minimiser. Linear: sqrt(8n(KL + ln 1/δ))/B (sub-Gaussian: sqrt(2n(KL + ln 1/δ))/σ);
        Thiemann: 2/(sqrt(q/A + 1) + 1), rationalised so that it holds at q = 0 too (λ* = 1).
    second_derivative : sympy.Expr
        ∂²objective/∂lambda², factored: positive on the domain of lambda, so the objective is
        convex and lambda* its unique minimum.
    value : sympy.Expr
        The bound at lambda*. Linear: q + B sqrt((KL + ln 1/δ)/(2n)); Thiemann: f_quad.
    complexity : sympy.Expr
        ``value - q``: for the linear bound B sqrt((KL + ln 1/δ)/(2n)), the term that takes the
        place of McAllester's square root.
    steps : tuple of str
        The derivation, one line per step, in plain text.
    """

    bound: str
    objective: sp.Expr
    derivative: sp.Expr
    lambda_star: sp.Expr
    second_derivative: sp.Expr
    value: sp.Expr
    complexity: sp.Expr
    steps: tuple[str, ...]

    def as_text(self) -> str:
        """The derivation in plain text."""
        return "\n".join([f"Optimal lambda of the {self.bound} bound", *self.steps])

    def as_latex(self) -> str:
        """The derivation as a LaTeX ``align*`` block."""
        lam = r"\lambda"
        rows = [
            rf"f({lam}) &= {_latex(self.objective)}",
            rf"\frac{{\partial f}}{{\partial {lam}}} &= {_latex(self.derivative)} = 0",
            rf"{lam}^* &= {_latex(self.lambda_star)}",
            rf"\frac{{\partial^2 f}}{{\partial {lam}^2}} &= {_latex(self.second_derivative)} > 0",
            rf"f({lam}^*) &= {_latex(self.value)}",
        ]
        return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"

    def __str__(self) -> str:
        return self.as_text()

    def to_dict(self) -> dict[str, str]:
        """JSON-safe: every expression as a sympy string and as LaTeX."""
        out: dict[str, str] = {"bound": self.bound}
        for key in ("objective", "derivative", "lambda_star", "second_derivative", "value"):
            expr = getattr(self, key)
            out[key] = str(expr)
            out[f"{key}_latex"] = _latex(expr)
        out["complexity"] = str(self.complexity)
        out["complexity_latex"] = _latex(self.complexity)
        return out


def _positive_root(equation: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    roots = [r for r in sp.solve(equation, symbol) if r.is_positive is not False]
    if len(roots) != 1:  # pragma: no cover - a derivation that sympy can no longer do
        raise RuntimeError(f"expected one positive root of {equation} = 0, got {roots}")
    return roots[0]


def _optimal_lambda_linear(sub_gaussian: bool) -> LambdaOptimum:
    f = linear_lambda_expr(sub_gaussian=sub_gaussian)
    df = sp.diff(f, _lam)
    lam_star = _positive_root(df, _lam)
    d2f = sp.factor(sp.diff(f, _lam, 2))
    complexity = sp.simplify(f.subs(_lam, lam_star) - _q)
    value = _q + complexity
    name = "linear sub-Gaussian" if sub_gaussian else "linear"
    steps = (
        f"  f(lambda) = {f}",
        f"  df/dlambda = {df} = 0",
        f"  lambda* = {lam_star}   (the positive root)",
        f"  d2f/dlambda2 = {d2f} > 0   (f is convex in lambda > 0: lambda* is the minimum)",
        f"  f(lambda*) = {value}",
        "  lambda* depends on KL: choose it on a grid fixed in advance and pay ln(k/delta).",
    )
    return LambdaOptimum(name, f, df, lam_star, d2f, value, complexity, steps)


def _optimal_lambda_thiemann() -> LambdaOptimum:
    q = sp.Symbol("q", positive=True)  # the root formula divides by q; q = 0 by continuity
    f = thiemann_expr().subs(_q, q)
    df = sp.diff(f, _lam)
    numerator = sp.factor(sp.numer(sp.together(df)))
    root = _positive_root(numerator, _lam)
    # Rationalise (sqrt(A) sqrt(A+q) - A)/q by its conjugate: the q cancels, so the form also
    # holds at q = 0, where f_lambda is 2A/(lambda(1 - lambda/2)) and lambda* = 1.
    num, den = sp.fraction(sp.together(root))
    rest, radical = num.as_independent(sp.sqrt(_A + q), as_Add=True)
    conjugate = radical - rest
    lam_star = sp.simplify(sp.cancel(sp.expand(num * conjugate) / den) / conjugate)
    value = sp.simplify(f.subs(_lam, lam_star)).subs(q, _q)
    lam_star = lam_star.subs(q, _q)
    f = f.subs(q, _q)
    d2f = sp.factor(sp.together(sp.diff(f, _lam, 2)))
    f_quad = f_quad_expr()
    is_f_quad = sp.simplify(value - f_quad) == 0
    steps = (
        f"  f(lambda) = {f},  A = (KL + ln(2 sqrt(n)/delta))/(2n)",
        f"  df/dlambda = 0  <=>  {sp.expand(numerator / 2)} = 0",
        f"  lambda* = {root}   (the root in (0, 2))",
        f"          = {lam_star}   (rationalised: also lambda* = 1 at q = 0)",
        f"  d2f/dlambda2 = {d2f} > 0 on (0, 2)   "
        "(6 lambda**2 - 12 lambda + 8 = 6 (lambda - 1)**2 + 2 > 0: lambda* is the minimum)",
        f"  f(lambda*) = {value}"
        + (f"  = {f_quad}  (f_quad: the difference simplifies to 0)" if is_f_quad else ""),
        "  f_lambda holds for all lambda in (0, 2) at once: no union bound for the choice.",
    )
    complexity = sp.simplify(value - _q)
    return LambdaOptimum("thiemann", f, df, lam_star, d2f, value, complexity, steps)


@functools.lru_cache(maxsize=8)
def _optimal_lambda(bound: str, sub_gaussian: bool) -> LambdaOptimum:
    if bound == "thiemann":
        return _optimal_lambda_thiemann()
    return _optimal_lambda_linear(sub_gaussian)


def optimal_lambda(bound: str = "linear", *, sub_gaussian: bool = False) -> LambdaOptimum:
    r"""Derive the lambda that minimises a lambda-indexed PAC-Bayes bound, and its value.

    Parameters
    ----------
    bound : {"linear", "thiemann"}, default "linear"
        "linear": Alquier's q + λB²/(8n) + (KL + ln 1/δ)/λ, minimised at
        λ* = sqrt(8n(KL + ln 1/δ))/B with value q + B sqrt((KL + ln 1/δ)/(2n)).
        "thiemann": f_λ = q/(1 - λ/2) + 2A/(λ(1 - λ/2)), minimised at
        λ* = 2/(sqrt(q/A + 1) + 1) with value f_quad = (sqrt(q + A) + sqrt(A))².
    sub_gaussian : bool, default False
        For "linear": a σ²-sub-Gaussian loss (B²/8 replaced by σ²/2), giving
        λ* = sqrt(2n(KL + ln 1/δ))/σ and value q + σ sqrt(2(KL + ln 1/δ)/n).

    Returns
    -------
    LambdaOptimum
        The objective, its derivative, λ*, the second derivative, the value and the
        derivation steps (``str()`` prints them; ``as_latex()``, ``to_dict()``). Cached: the
        same object is returned for the same arguments.
    """
    check_choice(bound, "bound", ("linear", "thiemann"))
    if bound == "thiemann" and sub_gaussian:
        _raise_sub_gaussian()
    return _optimal_lambda(bound, bool(sub_gaussian))


def _raise_sub_gaussian() -> None:
    """Thiemann's f_lambda is a relaxation of the kl bound: it has no sub-Gaussian form."""
    from pacbound.exceptions import InvalidParameterError

    raise InvalidParameterError(
        "`sub_gaussian` must be False for bound='thiemann' (f_lambda relaxes the kl bound, "
        "which needs a loss in [0, 1]); got True."
    )
