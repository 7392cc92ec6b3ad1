"""Public names of :mod:`pacbound` from this part of the package: name -> defining module."""

EXPORTS: dict[str, str] = {}
