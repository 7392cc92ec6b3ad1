"""Results of a fit: :class:`FitResult`, its assembly, summaries, plots and the HTML report.

- ``_result``: :class:`FitResult`, :class:`DStarEstimate`, :class:`FitIntervals`, their JSON
  form and :func:`load_fit` (:class:`~fits.estimate.ConfidenceInterval` is the interval type).
- ``_selection``: several model families compared (AICc weights, model-averaged d*(n)).
- ``_assemble``: a :class:`FitResult` from the pieces of a fit (intervals, verdict).
- ``_summary``: text and HTML renderings (statsmodels-style summary).
- ``_plots``: Altair charts, saved offline as HTML, PNG and SVG.
- ``_report``: ``fit.json``, CSV tables, plots and ``report.html`` in one folder.
"""

from __future__ import annotations

from pacbound.support import lazy_exports

EXPORTS: dict[str, str] = {
    "FitResult": "fits.results._result",
    "FitSummary": "fits.results._result",
    "DStarEstimate": "fits.results._result",
    "ConfidenceInterval": "fits.estimate._interval",
    "FitIntervals": "fits.results._result",
    "load_fit": "fits.results._result",
    "assemble_result": "fits.results._assemble",
    "ModelSelection": "fits.results._selection",
    "FamilyFit": "fits.results._selection",
    "write_report": "fits.results._report",
    "result_tables": "fits.results._report",
    "fit_charts": "fits.results._plots",
    "save_chart": "fits.results._plots",
    "CHART_NAMES": "fits.results._plots",
}
"""Public name -> the module that defines it (loaded on first use)."""

__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
