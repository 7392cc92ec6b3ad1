"""Public names of :mod:`measurement` from this part of the package: name -> defining module."""

EXPORTS: dict[str, str] = {}
