"""``tradeoff fit`` and ``tradeoff select``: fit the tradeoff to runs, choose data for a budget.

Heavy imports (pandas, scipy, altair) happen inside the commands so ``tradeoff --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pacbound.exceptions import InvalidParameterError
from pacbound.support import (
    check_output_path,
    config_option,
    make_app,
    parse_assignments,
    parse_float,
    parse_float_list,
    print_json,
    print_result,
    user_errors,
    warnings_to_stderr,
)

app = make_app()

_FIT_HELP = """Fit the difficulty/budget tradeoff to fine-tuning runs and predict d*(n).

RUNS are sweep folders, Hugging Face output folders (trainer_state.json, all_results.json,
checkpoint-*), LlamaFactory trainer_log.jsonl, W&B CSV exports, TensorBoard logdirs, plain
CSV/JSONL/Parquet tables in the canonical columns (run_id, difficulty, n, seed, train_loss,
test_loss, ...), or mlflow:<experiment>[@<uri>].

Writes fit.json, tables/*.csv, plots/*.{html,png,svg} and a self-contained report.html to
--out, and prints the parameters with intervals, d*(n) per budget, validation, AICc against the
baselines, and whether d* increases with n. With --profile, also profile-likelihood intervals
of the shape parameters (the F test of lmfit.conf_interval), beside the bootstrap ones.

\b
Examples:
  tradeoff fit sweep/ --out fit/
  tradeoff fit runs.csv --model exp --target error --n-resamples 2000 --out fit/ --json
  tradeoff fit outputs/ --pattern 'd={d}_n={n}_seed={seed}' --loss soft_l1 --out fit/
  tradeoff fit sweep/ --rate free --profile --out fit/   # does the interval of nu cover 1/2?
"""


def _bounds(items: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for key, value in parse_assignments(items, "--bounds").items():
        parts = value.split(":")
        if len(parts) != 2:
            raise InvalidParameterError(f"`--bounds` must be NAME=LOW:HIGH; got {key}={value!r}.")
        lo, hi = (parse_float(p, "--bounds") for p in parts)
        out[key] = (lo, hi)
    return out


def _config_option(name: str, *decls: str, **kwargs: object) -> object:
    from fits.analysis._config import FitConfig

    return config_option(FitConfig, name, *decls, **kwargs)


@app.command("fit", help=_FIT_HELP)
def fit_command(
    runs: list[str] = typer.Argument(..., help="Run files or folders (see above)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (replaced when complete)."),
    model: str = _config_option("model"),
    gap: str | None = _config_option("gap"),
    rate: str | None = _config_option("rate"),
    delta: float | None = _config_option("delta"),
    catoni_c: float = _config_option("catoni_c"),
    loss: str = _config_option("loss"),
    f_scale: float | None = _config_option("f_scale"),
    target: str = _config_option("target"),
    weights: str = _config_option("weights"),
    train_model: str = _config_option("train_model"),
    n_resamples: int = _config_option("n_resamples"),
    bootstrap: str = _config_option("bootstrap"),
    confidence_level: float = _config_option("confidence_level"),
    bounds: list[str] = _config_option(
        "bounds", default=[], extra="As NAME=LOW:HIGH (repeatable)."
    ),
    grid: int | None = _config_option("grid"),
    exclude: list[str] = _config_option("exclude", default=[], extra="(Repeatable.)"),
    cv: bool = _config_option("cv"),
    cv_resamples: int = _config_option("cv_resamples"),
    baselines: bool = _config_option("baselines"),
    seed: int = _config_option("seed"),
    pattern: str | None = typer.Option(
        None, "--pattern", help="Folder-name pattern, e.g. 'd={d}_n={n}_seed={seed}'."
    ),
    metadata: Path | None = typer.Option(
        None, "--metadata", help="Table with run_id and metadata columns."
    ),
    column: list[str] = typer.Option(
        [], "--column", help="Column mapping CANONICAL=ACTUAL (repeatable)."
    ),
    fmt: str = typer.Option(
        "auto", "--format", help="auto|sweep|hf|llamafactory|wandb|tensorboard|table."
    ),
    examples: Path | None = typer.Option(
        None,
        "--examples",
        help="Per-example table (run_id, score) for the threshold-robustness check.",
    ),
    score_column: str = typer.Option("score", "--score-column", help="Score column of --examples."),
    thresholds: str | None = typer.Option(
        None, "--thresholds", help="Bin edges of the score (default: equal-count quantiles)."
    ),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Render the plots."),
    profile: bool = typer.Option(
        False,
        "--profile",
        help="Also profile-likelihood intervals of the shape parameters (linear loss only).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object (model, params, d_star, ...)."
    ),
    train_metric: str = typer.Option(
        "auto",
        "--train-metric",
        help="train_loss from: eval (eval_<train>_loss), logged (mean logged loss, last 10% of "
        "steps), average (run-average train_loss), auto (eval, else logged, with a warning).",
    ),
    test_slice: str = typer.Option(
        "test", "--test-slice", help="Eval set whose eval_<NAME>_loss is the test loss."
    ),
    train_slice: list[str] = typer.Option(
        [], "--train-slice", help="Eval set on training data: eval_<NAME>_loss (repeatable)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace --out even if it is a folder this toolkit did not write."
    ),
) -> None:
    with user_errors():
        check_output_path(out, [*runs, metadata, examples], kind="dir", overwrite=overwrite)
        from fits.analysis._config import FitConfig
        from fits.analysis._fit import fit_tradeoff
        from fits.exceptions import DegenerateBootstrapWarning
        from fits.results._report import write_report
        from fits.runs._load import load_runs

        config = FitConfig(
            model=model,
            gap=gap,
            rate=rate,
            delta=delta,
            catoni_c=catoni_c,
            loss=loss,
            f_scale=f_scale,
            target=target,
            weights=weights,
            train_model=train_model,
            bounds=_bounds(bounds) or None,
            grid=grid,
            exclude=tuple(exclude),
            n_resamples=n_resamples,
            bootstrap=bootstrap,
            confidence_level=confidence_level,
            cv=cv,
            cv_resamples=cv_resamples,
            baselines=baselines,
            seed=seed,
        )
        user_warnings = (UserWarning, DegenerateBootstrapWarning)  # loaders, bootstrap
        with warnings_to_stderr(*user_warnings):
            table = load_runs(
                runs,
                format=fmt,
                columns=parse_assignments(column, "--column") or None,
                pattern=pattern,
                metadata=metadata,
                train_metric=train_metric,
                test_slice=test_slice,
                exclude=exclude,
                **({"train_slices": train_slice} if train_slice else {}),
            )
        with warnings_to_stderr(*user_warnings):
            result = fit_tradeoff(table, config, progress=progress)
        robust = None
        if examples is not None:
            from fits.analysis._robustness import threshold_robustness
            from fits.runs._tables import read_any_table

            robust = threshold_robustness(
                table,
                read_any_table(examples),
                score=score_column,
                thresholds=parse_float_list(thresholds, "--thresholds") if thresholds else None,
                n_resamples=min(n_resamples, 200),
                config=config,
            )
        profiled = None
        if profile:
            from fits.estimate._profile import profile_intervals

            profiled = profile_intervals(result)
        files = write_report(result, out, plots=plots, robustness=robust, profile=profiled)
        if as_json:
            payload = result.to_dict(include_draws=False)
            payload.pop("data", None)
            payload["out"] = str(out)
            if "train_loss_source" in table.columns:
                src = table["train_loss_source"].dropna().astype(str).value_counts()
                payload["train_loss_source"] = {str(k): int(v) for k, v in src.items()}
            payload["files"] = {k: str(v) for k, v in files.items()}
            if robust is not None:
                payload["robustness"] = robust.to_dict()
            if profiled is not None:
                payload["profile"] = profiled.to_dict()
            print_json(payload)
        else:
            typer.echo(result.summary().text)
            if robust is not None:
                typer.echo(str(robust) + "\n")
            if profiled is not None:
                typer.echo(str(profiled) + "\n")
            typer.echo(f"wrote {files['fit']}, {files['report']} and tables/plots in {out}")


_SELECT_HELP = """Choose N examples at the predicted optimal difficulty d*(N) from a scored dataset.

DATA is a CSV/TSV/JSONL/Parquet table with a difficulty column on the fit's scale: a numeric
score, or bin labels matching the runs' difficulty labels. The selection is written to --out
(format from its extension) and is reproducible with --seed.

\b
Examples:
  tradeoff select pool.jsonl --budget 4000 --fit fit/fit.json --out train.jsonl
  tradeoff select pool.csv --budget 500 --fit fit/ --mode mixture --column length --out sel.csv
"""


@app.command("select", help=_SELECT_HELP)
def select_command(
    data: Path = typer.Argument(..., help="Scored dataset."),
    budget: int = typer.Option(..., "--budget", "-n", help="How many examples (the budget n)."),
    fit: Path = typer.Option(..., "--fit", help="fit.json of `tradeoff fit` (or its folder)."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output table (.csv, .tsv, .jsonl, .parquet)."
    ),
    column: str | None = typer.Option(
        None, "--column", help="Difficulty column (default: difficulty, score, ...)."
    ),
    mode: str = typer.Option(
        "nearest", "--mode", help="nearest (closest to d*) or mixture (bracketing levels)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the draw."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    with user_errors():
        check_output_path(out, [data, fit], kind="file")
        from fits.analysis._select import select_examples
        from pacbound.support import write_table

        result = select_examples(data, budget, fit, column=column, mode=mode, seed=seed)
        write_table(result.selected, out)
        print_result(
            result,
            as_json=as_json,
            payload={**result.to_dict(), "out": str(out)},
            text=f"{result}\nwrote {out}",
        )
        for w in result.warnings:
            if as_json:
                typer.echo(f"warning: {w}", err=True)
