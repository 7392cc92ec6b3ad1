"""``tradeoff`` commands owned by :mod:`measurement`.

``weights`` and ``kl`` (checkpoint statistics and Gaussian KL) live in
:mod:`measurement._cli_weights`; ``difficulty``, ``losses`` and ``certify`` in
:mod:`measurement._cli_data`. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import typer

from measurement._cli_data import app as data_app
from measurement._cli_weights import app as weights_app

app = typer.Typer(add_completion=False)
app.add_typer(weights_app)
app.add_typer(data_app)
