"""``tradeoff`` commands owned by :mod:`pacbound`.

``kl-inv`` and ``bound`` live in :mod:`pacbound._cli_bounds`, ``derive`` in
:mod:`pacbound._cli_derive`. The top-level app (:mod:`fits.cli.main`) mounts :data:`app`, so
these appear as top-level commands. Nothing here imports torch.
"""

from __future__ import annotations

from pacbound._cli_bounds import app as bounds_app
from pacbound._cli_derive import app as derive_app
from pacbound.support._cli import make_app

app = make_app()
app.add_typer(bounds_app)
app.add_typer(derive_app)
