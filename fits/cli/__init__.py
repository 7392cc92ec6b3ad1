"""``tradeoff`` commands owned by :mod:`fits`.

``fit`` and ``select`` live in :mod:`fits.cli._fit`; ``data``, ``sweep`` and ``demo`` in
:mod:`fits.cli._sweep` (``sweep compress`` in :mod:`fits.cli._compress`); ``env`` in
:mod:`fits.cli._env`. Heavy imports happen inside the
commands.
"""

from __future__ import annotations

from fits.cli import _compress  # noqa: F401  (registers ``tradeoff sweep compress``)
from fits.cli._env import app as env_app
from fits.cli._fit import app as fit_app
from fits.cli._sweep import app as sweep_app
from pacbound.support import make_app

app = make_app()
app.add_typer(fit_app)
app.add_typer(sweep_app)
app.add_typer(env_app)
