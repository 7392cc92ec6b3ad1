"""Public names of :mod:`fits` from this part of the package: name -> defining module."""

EXPORTS: dict[str, str] = {}
