"""``tradeoff`` commands owned by :mod:`fits`.

``fit`` and ``select`` live in :mod:`fits._cli_fit`; ``data``, ``sweep`` and ``demo`` in
:mod:`fits._cli_sweep`; ``env`` in :mod:`fits._cli_env`. Heavy imports happen inside the
commands.
"""

from __future__ import annotations

from fits._cli_env import app as env_app
from fits._cli_fit import app as fit_app
from fits._cli_sweep import app as sweep_app
from pacbound._cli import make_app

app = make_app()
app.add_typer(fit_app)
app.add_typer(sweep_app)
app.add_typer(env_app)
