"""Closed forms of d*(n): solve the first-order condition exactly, and check every answer.

Two routes, tried in order by :func:`closed_form`:

1. Exact, by structure. Write the condition ∂B/∂d = 0 as lhs(d, n) = rhs(d) with both sides
   positive (lhs = ∂G_gen/∂d, rhs = -C T'(d)) and expand L = ln lhs - ln rhs. When
   L = c(n) + α ln d (power laws), d* = exp(-c/α); when L = c(n) + β d (exponentials),
   d* = -c/β; when both appear with α, β of one sign, d* = (α/β) W0((β/α) e^{-c/α}) (Lambert W,
   principal branch, unique root). The n-dependence of c is split off so the result reads in
   the usual form, e.g. d* = [ln n + 2 ln(2bCt/(aA sqrt(k)))]/(a + 2b) for exponentials.
2. :func:`sympy.solve`, in a child process that is killed after ``timeout`` seconds (sympy can
   run for minutes, and cannot be interrupted in-process).

A candidate is accepted only if, at random positive parameter points, wherever it is real and
positive it meets the condition (relative residual < 1e-8) with B_dd > 0, and it is the only
candidate that does.
"""

from __future__ import annotations

import math
import multiprocessing
from typing import Any

import numpy as np
import sympy as sp

from pacbound._tradeoff_parse import parameter_symbol

__all__ = ["CHECK_POINTS", "closed_form"]

#: Random parameter points at which every closed form is checked.
CHECK_POINTS = 6


def _n() -> sp.Symbol:
    return sp.Symbol("n", positive=True)


def _log_linear_root(lhs: sp.Expr, rhs: sp.Expr, d: sp.Symbol) -> tuple[sp.Expr, str] | None:
    """Solve lhs(d, n) = rhs(d) when log(lhs/rhs) = c(n) + α ln d or c(n) + β d exactly."""
    if not (lhs.is_positive and rhs.is_positive):
        return None
    n = _n()
    L = sp.expand(sp.expand_log(sp.log(lhs) - sp.log(rhs), force=True))
    const, alpha, beta = sp.Integer(0), sp.Integer(0), sp.Integer(0)
    for term in sp.Add.make_args(L):
        if not term.has(d):
            const += term
        elif not (term / sp.log(d)).has(d):
            alpha += term / sp.log(d)
        elif not (term / d).has(d):
            beta += term / d
        else:
            return None
    alpha, beta = sp.simplify(alpha), sp.simplify(beta)
    neg = sp.expand(-const)
    m = neg.coeff(sp.log(n))
    rest = sp.logcombine(sp.expand(neg - m * sp.log(n)), force=True)
    if rest.has(n):
        return None
    if beta == 0 and alpha != 0:  # power law: alpha ln d = m ln n + rest
        scale = rest.args[0] ** (1 / alpha) if isinstance(rest, sp.log) else sp.exp(rest / alpha)
        return scale * n ** sp.simplify(m / alpha), "log-linear in ln d (power law)"
    if alpha == 0 and beta != 0:  # exponential: beta d = m ln n + rest
        if m == 0:
            return rest / beta, "linear in d (exponential)"
        return (sp.log(n) + rest / m) / sp.expand(beta / m), "linear in d (exponential)"
    same_sign = (alpha.is_positive and beta.is_positive) or (alpha.is_negative and beta.is_negative)
    if same_sign:  # d^alpha e^(beta d) = S: (beta/alpha) d = W0((beta/alpha) S^(1/alpha))
        ratio = sp.simplify(beta / alpha)
        scale = rest.args[0] ** (1 / alpha) if isinstance(rest, sp.log) else sp.exp(rest / alpha)
        arg = ratio * scale * n ** sp.simplify(m / alpha)
        return sp.LambertW(arg) / ratio, "alpha ln d + beta d with alpha, beta of one sign (W0)"
    return None


def _solve_worker(conn: Any, equation: sp.Expr, d: sp.Symbol) -> None:  # pragma: no cover
    try:
        conn.send(("ok", sp.solve(equation, d)))
    except Exception as exc:  # report, don't raise, in the child
        conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
    finally:
        conn.close()


def _solve_with_timeout(equation: sp.Expr, d: sp.Symbol, timeout: float) -> tuple[list, str]:
    """Run :func:`sympy.solve` in a child process; give up after ``timeout`` seconds."""
    if timeout <= 0:
        return [], "sympy.solve not tried (solve_timeout = 0)"
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_solve_worker, args=(child, equation, d), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            return [], f"sympy.solve gave no answer within {timeout:g} s"
        status, payload = parent.recv()
    except (EOFError, OSError):
        return [], "sympy.solve ended without an answer"
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
    if status != "ok":
        return [], f"sympy.solve failed ({payload})"
    if not payload:
        return [], "sympy.solve returned no solution (which does not prove that none exists)"
    return list(payload), f"sympy.solve returned {len(payload)} solution(s)"


def _check_points(parameters: tuple[str, ...], rng_seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(rng_seed)
    points = []
    for _ in range(CHECK_POINTS):
        point = {
            p: float(rng.uniform(0.01, 0.2) if p == "delta" else rng.uniform(0.5, 2.0))
            for p in parameters
        }
        point["n"] = float(10 ** rng.uniform(1, 6))
        points.append(point)
    return points


def _validate_root(
    cand: sp.Expr, fns: dict[str, Any], parameters: tuple[str, ...]
) -> tuple[int, int]:
    """Count random points where ``cand`` is a local minimiser, and where it is not one."""
    args = [_n(), *(parameter_symbol(p) for p in parameters)]
    try:
        f = sp.lambdify(args, cand, modules=["scipy", "numpy"])
    except Exception:
        return 0, 1
    good = bad = 0
    for point in _check_points(parameters):
        vals = [point[p] for p in parameters]
        with np.errstate(all="ignore"):
            try:
                x = complex(f(point["n"], *vals))
            except Exception:
                bad += 1
                continue
            if not (math.isfinite(x.real) and abs(x.imag) <= 1e-12 * abs(x.real)):
                continue  # complex here: not this branch's domain
            d = x.real
            if d <= 0:
                continue  # outside the domain d > 0 at this point
            lhs, rhs = fns["lhs"](d, point["n"], *vals), fns["rhs"](d, point["n"], *vals)
            stationary = abs(lhs - rhs) <= 1e-8 * (abs(lhs) + abs(rhs))
            minimum = fns["B_dd"](d, point["n"], *vals) > 0
        if stationary and minimum:
            good += 1
        else:
            bad += 1
    return good, bad


def closed_form(
    lhs: sp.Expr,
    rhs: sp.Expr,
    d: sp.Symbol,
    fns: dict[str, Any],
    parameters: tuple[str, ...],
    solve_timeout: float,
) -> tuple[sp.Expr | None, str, list[str]]:
    """Solve the first-order condition ``lhs = rhs`` for d in closed form, if possible.

    Parameters
    ----------
    lhs, rhs : sympy.Expr
        ∂G_gen/∂d and -C T'(d).
    d : sympy.Symbol
        The difficulty.
    fns : dict
        Lambdified ``lhs``, ``rhs`` and ``B_dd`` taking ``(d, n, *params)``, for the checks.
    parameters : tuple of str
        The parameter names, in the order ``fns`` takes them.
    solve_timeout : float
        Seconds allowed to :func:`sympy.solve` (0: don't try it).

    Returns
    -------
    d_star, method, notes
        d*(n) or None, how it was found ("exact: ...", "sympy.solve" or "none"), and notes
        for the reader.
    """
    notes: list[str] = []
    found = _log_linear_root(lhs, rhs, d)
    if found is not None:
        cand, how = found
        candidates, method = [cand], f"exact: log of the first-order condition {how}"
    else:
        candidates, msg = _solve_with_timeout(lhs - rhs, d, solve_timeout)
        method = "sympy.solve"
        notes.append(
            "The first-order condition is not of a form solved exactly here (log-linear in "
            f"ln d, in d, or in both with coefficients of one sign); {msg}."
        )
    survivors = []
    for cand in candidates:
        good, bad = _validate_root(cand, fns, parameters)
        if good and not bad:
            survivors.append(cand)
    if len(survivors) == 1:
        notes.append(
            f"d*(n) checked at {CHECK_POINTS} random parameter points: where it is real and "
            "positive it meets the first-order condition (relative residual < 1e-8) with "
            "B_dd > 0; it is the minimiser only where it is positive."
        )
        return survivors[0], method, notes
    if candidates:
        notes.append(
            f"No unique closed-form minimiser among {len(candidates)} candidate(s) "
            f"({len(survivors)} passed the numeric check): d*(n) is numeric only."
        )
    return None, "none", notes
