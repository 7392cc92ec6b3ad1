"""``tradeoff derive``: the difficulty/budget tradeoff, derived symbolically (see the package's
``cli.py``). sympy is imported inside the command, so ``tradeoff --help`` stays fast."""

from __future__ import annotations

import math

import typer

from pacbound.exceptions import InvalidParameterError
from pacbound.support._cli import (
    make_app,
    parse_assignments,
    parse_float_list,
    parse_floats,
    print_json,
    user_errors,
)

app = make_app()


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


@app.command("derive")
def derive(
    gen: str = typer.Option(
        "mcallester", "--gen", help="Generalisation term: mcallester or linear (linear-lambda)."
    ),
    K: str = typer.Option(
        "power",
        "--K",
        help="K(d), increasing: power (k*d**g), exp (k*exp(a*d)) or an "
        "expression in d, e.g. 'd**2 + d'.",
    ),
    T: str = typer.Option(
        "power",
        "--T",
        help="T(d), decreasing: power (t*d**-b), exp (t*exp(-b*d)) or an "
        "expression in d, e.g. '1/(1 + d)'.",
    ),
    simplified: bool = typer.Option(
        True,
        "--simplified/--full",
        help="Simplified G_gen (A*sqrt(K/n), closed forms for power/exp) or the full bound "
        "with its ln(2 sqrt(n)/delta) term.",
    ),
    latex: bool = typer.Option(False, "--latex", help="Print the derivation as LaTeX."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    n: str | None = typer.Option(
        None, "--n", help="Budgets at which to compute d*(n), comma-separated (needs --param)."
    ),
    param: list[str] = typer.Option(
        [], "--param", help="A parameter value NAME=VALUE (repeat: --param k=1 --param g=2)."
    ),
    d_range: str | None = typer.Option(
        None, "--d-range", help="LO,HI: difficulty range of the numeric search (default 1e-6,1e6)."
    ),
    solve_timeout: float = typer.Option(
        2.0, "--solve-timeout", help="Seconds allowed to sympy.solve (0: don't try)."
    ),
) -> None:
    """Derive B(d, n) = G_gen(K(d), n) + C*T(d): first-order condition, d*(n), sign of dd*/dn.

    \b
    Examples:
      tradeoff derive --gen mcallester --K power --T power
      tradeoff derive --K exp --T exp --latex
      tradeoff derive --K 'd**2 + d' --T '1/(1 + d)' --json
      tradeoff derive --n 100,1000,10000 --param A=1 --param C=1 \\
          --param k=1 --param g=2 --param t=1 --param b=1
    """
    with user_errors():
        from pacbound._tradeoff import derive_tradeoff

        values = parse_assignments(
            param,
            "--param",
            form="NAME=VALUE with a finite number VALUE (e.g. k=1.5)",
            convert=_finite_float,
            key_ok=str.isidentifier,
            unique="parameter",
        )
        rng = None
        if d_range is not None:
            rng = parse_floats(d_range, "--d-range", 2, form="two numbers LO,HI")
        budgets = None if n is None else parse_float_list(n, "--n")
        der = derive_tradeoff(
            gen,
            K,
            T,
            simplified=simplified,
            reference=values,
            d_range=rng,
            solve_timeout=solve_timeout,
        )
        unknown = sorted(set(values) - set(der.parameters))
        if unknown:
            raise InvalidParameterError(
                f"`--param` must name a parameter of this tradeoff "
                f"({', '.join(der.parameters)}); got {unknown[0]!r}."
            )
        solution = None
        if budgets is not None:
            solution = der.solve(budgets, d_range=rng, **values)
        if json_out:
            out = der.to_dict()
            out["d_star_values"] = None if solution is None else solution.to_dict()
            print_json(out)
            return
        typer.echo(der.as_latex() if latex else der.as_text())
        if solution is not None:
            typer.echo(str(solution))
