"""Runs -> fitted tradeoff: loaders for logged runs, the tradeoff regression, d*(n) with
bootstrap intervals, plots and reports, data selection, fresh SFT sweeps and the demo.

The sub-packages draw the architecture, each depending only on those above it:

- :mod:`fits.runs`: logged runs in (one loader per source family, one canonical table);
- :mod:`fits.model`: the tradeoff model families, the (d, n) cells, and d*(n);
- :mod:`fits.estimate`: the core fit, bootstrap, baselines, cross-validation, profiles;
- :mod:`fits.results`: :class:`FitResult`, its assembly, summaries, plots, the HTML report;
- :mod:`fits.analysis`: :func:`fit_tradeoff`, threshold robustness, data selection;
- :mod:`fits.synthetic`: the controlled synthetic task;
- :mod:`fits.sweep`: fresh SFT sweeps over difficulty x budget x seed, local or on Ray;
- :mod:`fits.experiments`: theory against empirics on sweeps, and ``tradeoff demo``;
- :mod:`fits.cli`: the ``tradeoff`` command (thin: options -> one library call -> print).

Note: PyPI also has an unrelated package called ``fits`` (a FITS-file loader); this one is
installed by ``sft-tradeoff``. The ``tradeoff`` command is the stable entry point.
"""

from __future__ import annotations

from fits import analysis, estimate, experiments, model, results, runs, sweep, synthetic
from pacbound.support import lazy_exports

_EXCEPTIONS = {
    "FitError": "fits.exceptions",
    "FitRefusedError": "fits.exceptions",
    "InsufficientDataError": "fits.exceptions",
    "RunsFileError": "fits.exceptions",
    "MetadataConflictError": "fits.exceptions",
    "TruncatedExportWarning": "fits.exceptions",
    "DegenerateBootstrapWarning": "fits.exceptions",
}

EXPORTS: dict[str, str] = {
    **runs.EXPORTS,
    **model.EXPORTS,
    **estimate.EXPORTS,
    **results.EXPORTS,
    **analysis.EXPORTS,
    **synthetic.EXPORTS,
    **sweep.EXPORTS,
    **experiments.EXPORTS,
    **_EXCEPTIONS,
}
"""Public name -> the module that defines it (loaded on first use): every sub-package's public
names, and the errors and warnings of :mod:`fits.exceptions`."""

__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
