"""Public names of :mod:`fits` from this part of the package: name -> defining module.

Loading runs, fitting the tradeoff, d*(n), reports, threshold robustness and data selection.
"""

EXPORTS: dict[str, str] = {
    # loading runs
    "load_runs": "fits._runs",
    "RUN_COLUMNS": "fits._runs",
    "FolderPattern": "fits._runs",
    "metrics_to_columns": "fits._runs",
    # fitting
    "fit_tradeoff": "fits._fit",
    "ModelSpec": "fits._models",
    "TradeoffModel": "fits._models",
    "prepare_data": "fits._cells",
    "FitData": "fits._cells",
    # results
    "FitResult": "fits._result",
    "FitSummary": "fits._result",
    "DStarEstimate": "fits._result",
    "ConfidenceInterval": "fits._result",
    "load_fit": "fits._result",
    "profile_intervals": "fits._profile",
    "ProfileResult": "fits._profile",
    "ProfileInterval": "fits._profile",
    # outputs
    "write_report": "fits._report",
    "result_tables": "fits._report",
    "fit_charts": "fits._plots",
    "save_chart": "fits._plots",
    "CHART_NAMES": "fits._plots",
    # threshold robustness and data selection
    "threshold_robustness": "fits._robustness",
    "RobustnessResult": "fits._robustness",
    "select_examples": "fits._select",
    "SelectionResult": "fits._select",
    # errors and warnings
    "FitError": "fits.exceptions",
    "FitRefusedError": "fits.exceptions",
    "InsufficientDataError": "fits.exceptions",
    "RunsFileError": "fits.exceptions",
    "MetadataConflictError": "fits.exceptions",
    "TruncatedExportWarning": "fits.exceptions",
    "DegenerateBootstrapWarning": "fits.exceptions",
}
