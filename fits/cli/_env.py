"""``tradeoff env``: versions, CPUs, GPUs and the kl-inverse backend of this installation."""

from __future__ import annotations

import dataclasses

import typer

from pacbound.support import make_app, print_result, user_errors

app = make_app()


@app.command("env")
def env_command(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """What this installation runs on: versions, CPUs, GPUs, the kl-inverse backend.

    Paste it into bug reports, and next to benchmark figures.

    Examples:

        tradeoff env

        tradeoff env --json
    """
    from pacbound.support import environment_report

    with user_errors():
        report = environment_report()
        print_result(report, as_json=json_out, payload=dataclasses.asdict(report))
