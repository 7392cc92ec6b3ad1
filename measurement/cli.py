"""``tradeoff`` commands owned by :mod:`measurement`.

``weights`` and ``kl`` (checkpoint statistics and Gaussian KL) live in
:mod:`measurement._cli_weights`; ``difficulty``, ``losses`` and ``certify`` in
:mod:`measurement._cli_data`. Heavy imports happen inside the commands.
"""

from __future__ import annotations

from measurement._cli_data import app as data_app
from measurement._cli_weights import app as weights_app
from pacbound.support import make_app

app = make_app()
app.add_typer(weights_app)
app.add_typer(data_app)
