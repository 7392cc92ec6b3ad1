"""The ``tradeoff`` console command: mounts the sub-commands of each package.

Each package owns its commands (a Typer app in its own ``cli.py``); this module only mounts
them. Dependencies point one way (pacbound <- measurement <- fits), which is why the entry
point lives in :mod:`fits`.
"""

from __future__ import annotations

import typer

from fits.cli import app as fits_app
from measurement.cli import app as measurement_app
from pacbound.cli import app as pacbound_app
from pacbound.support import make_app

app = make_app(
    name="tradeoff",
    help=(
        "Data difficulty vs. budget in LLM fine-tuning: exact PAC-Bayes bounds, weight-space KL "
        "from real checkpoints, difficulty-conditioned losses, fitted tradeoff curves and the "
        "optimal difficulty d*(n) with confidence intervals."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(pacbound_app)
app.add_typer(measurement_app)
app.add_typer(fits_app)


def _print_version(value: bool) -> None:
    if value:
        from pacbound.support import installed_version

        typer.echo(f"sft-tradeoff {installed_version('sft-tradeoff') or 'unknown'}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit (`tradeoff env` for the whole environment).",
    ),
) -> None:
    """Data difficulty vs. budget in LLM fine-tuning: exact PAC-Bayes bounds, weight-space KL
    from real checkpoints, difficulty-conditioned losses, fitted tradeoff curves and the
    optimal difficulty d*(n) with confidence intervals."""


def main() -> None:
    """Run the ``tradeoff`` command."""
    app()


if __name__ == "__main__":
    main()
