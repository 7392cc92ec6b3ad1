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

from pacbound.support import lazy_exports

EXPORTS: dict[str, str] = {
    "load_runs": "fits.runs._load",
    "RUN_COLUMNS": "fits.runs._record",
    "metrics_to_columns": "fits.runs._record",
    "FolderPattern": "fits.runs._metadata",
    "fit_tradeoff": "fits.analysis._fit",
    "FitConfig": "fits.analysis._config",
    "ModelSpec": "fits.model._families",
    "TradeoffModel": "fits.model._families",
    "prepare_data": "fits.model._cells",
    "FitData": "fits.model._cells",
    "FitResult": "fits.results._result",
    "FitSummary": "fits.results._result",
    "DStarEstimate": "fits.results._result",
    "ConfidenceInterval": "fits.estimate._interval",
    "FitIntervals": "fits.results._result",
    "load_fit": "fits.results._result",
    "ModelSelection": "fits.results._selection",
    "LackOfFit": "fits.estimate._lack_of_fit",
    "ModelFreeDStar": "fits.estimate._model_free",
    "profile_intervals": "fits.estimate._profile",
    "ProfileResult": "fits.estimate._profile",
    "ParameterProfile": "fits.estimate._profile",
    "Refusal": "fits.estimate._varpro",
    "write_report": "fits.results._report",
    "result_tables": "fits.results._report",
    "fit_charts": "fits.results._plots",
    "save_chart": "fits.results._plots",
    "CHART_NAMES": "fits.results._plots",
    "threshold_robustness": "fits.analysis._robustness",
    "RobustnessResult": "fits.analysis._robustness",
    "select_examples": "fits.analysis._select",
    "SelectionResult": "fits.analysis._select",
    "FitError": "fits.exceptions",
    "FitRefusedError": "fits.exceptions",
    "InsufficientDataError": "fits.exceptions",
    "RunsFileError": "fits.exceptions",
    "MetadataConflictError": "fits.exceptions",
    "TruncatedExportWarning": "fits.exceptions",
    "DegenerateBootstrapWarning": "fits.exceptions",
    "TaskFormat": "fits.synthetic._generator",
    "SyntheticProblem": "fits.synthetic._generator",
    "generate_problems": "fits.synthetic._generator",
    "check_problem": "fits.synthetic._generator",
    "solve_prompt": "fits.synthetic._generator",
    "answer_from_completion": "fits.synthetic._generator",
    "build_synthetic_tokenizer": "fits.synthetic._vocab",
    "OpsDistribution": "fits.synthetic._distributions",
    "ops_bin": "fits.synthetic._distributions",
    "ops_mixture": "fits.synthetic._distributions",
    "uniform_ops": "fits.synthetic._distributions",
    "tv_distance": "fits.synthetic._distributions",
    "sample_training_set": "fits.synthetic._data",
    "decomposed_test_set": "fits.synthetic._data",
    "write_problems": "fits.synthetic._data",
    "decomposed_metrics": "fits.synthetic._evaluation",
    "PretrainConfig": "fits.synthetic._model",
    "SyntheticModelConfig": "fits.synthetic._model",
    "find_synthetic_base": "fits.synthetic._model",
    "cache_root": "fits.synthetic._model",
    "pretrain_synthetic_base": "fits.synthetic._pretrain",
    "ensure_synthetic_base": "fits.synthetic._pretrain",
    "SweepSpec": "fits.sweep._spec",
    "SpecError": "fits.sweep._spec",
    "load_spec": "fits.sweep._spec",
    "PlannedRun": "fits.sweep._plan",
    "SweepResult": "fits.sweep._api",
    "run_sweep": "fits.sweep._api",
    "SweepStatus": "fits.sweep._status",
    "sweep_status": "fits.sweep._status",
    "SIGMA_GRID": "fits.experiments._theory",
    "TheoryConfig": "fits.experiments._theory",
    "TheoryResult": "fits.experiments._theory",
    "theory_for_sweep": "fits.experiments._theory",
    "theory_charts": "fits.sweep._charts",
    "sweep_charts": "fits.sweep._charts",
    "DemoResult": "fits.experiments._demo",
    "demo_spec": "fits.experiments._demo",
    "run_demo": "fits.experiments._demo",
}
"""Public name -> the module that defines it (loaded on first use)."""

__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
