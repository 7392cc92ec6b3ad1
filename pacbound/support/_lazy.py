"""Lazy public API: ``package.name`` imports the module that defines ``name`` on first use.

Each package's ``__init__`` declares its public names as a mapping ``name -> module`` and
installs the ``__getattr__``/``__dir__`` returned here (the pattern of peft's tuner packages).
So ``import pacbound`` costs numpy only; sympy, torch or transformers load when a function that
needs them is first touched.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Return ``(__getattr__, __dir__, __all__)`` for ``package`` from ``exports``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping of str to str
        Public name -> fully qualified module that defines it.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        try:
            module_name = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module_name), name)
        importlib.import_module(package).__dict__[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(table)

    __getattr__.exports = table  # type: ignore[attr-defined]  # read by the architecture test

    return __getattr__, __dir__, sorted(table)
