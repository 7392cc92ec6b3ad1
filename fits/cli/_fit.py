"""``tradeoff fit`` and ``tradeoff select``: fit the tradeoff to runs, choose data for a budget.

Heavy imports (pandas, scipy, altair) happen inside the commands so ``tradeoff --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pacbound.exceptions import InvalidParameterError
from pacbound.support import (
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
  tradeoff fit runs.csv --model exp --target error --bootstrap 2000 --out fit/ --json
  tradeoff fit outputs/ --pattern 'd={d}_n={n}_seed={seed}' --loss soft_l1 --out fit/
  tradeoff fit sweep/ --rate free --profile --out fit/   # does the interval of nu cover 1/2?
"""


def _bounds(items: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for key, value in parse_assignments(items, "--bound").items():
        parts = value.split(":")
        if len(parts) != 2:
            raise InvalidParameterError(f"`--bound` must be NAME=LOW:HIGH; got {key}={value!r}.")
        lo, hi = (parse_float(p, "--bound") for p in parts)
        out[key] = (lo, hi)
    return out


@app.command("fit", help=_FIT_HELP)
def fit_command(
    runs: list[str] = typer.Argument(..., help="Run files or folders (see above)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (replaced when complete)."),
    model: str = typer.Option(
        "power", "--model", help="K[,T]: K in power|exp|kl|sq_dist, T in power|exp."
    ),
    gap: str = typer.Option("mcallester", "--gap", help="Gap form: mcallester|kl|catoni."),
    rate: str = typer.Option(
        "sqrt", "--rate", help="sqrt (n^-1/2, the theory) or free (fit n^-nu)."
    ),
    delta: float = typer.Option(0.05, "--delta", help="The bound's delta in the log terms."),
    loss: str = typer.Option(
        "linear", "--loss", help="linear|soft_l1|huber (robust: f_scale from the MAD)."
    ),
    f_scale: float | None = typer.Option(None, "--f-scale", help="Inlier scale of a robust loss."),
    target: str = typer.Option(
        "loss", "--target", help="loss, or error (1 - accuracy, the paper's metric)."
    ),
    weights: str = typer.Option("auto", "--weights", help="auto|inverse-variance|none."),
    train_model: str = typer.Option(
        "linear", "--train-model", help="Training metric in d*: linear|interpolate|flat."
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap refits (0: none)."),
    bootstrap_method: str = typer.Option("auto", "--bootstrap-method", help="auto|seeds|wild."),
    confidence: float = typer.Option(
        0.95, "--confidence", help="Confidence level of the intervals."
    ),
    bound: list[str] = typer.Option(
        [], "--bound", help="Shape-parameter bounds NAME=LOW:HIGH (repeatable)."
    ),
    grid: int | None = typer.Option(None, "--grid", help="Grid points per shape parameter."),
    exclude: list[str] = typer.Option([], "--exclude", help="Run id to leave out (repeatable)."),
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
    cv: bool = typer.Option(True, "--cv/--no-cv", help="Cross-validate over budgets."),
    baselines: bool = typer.Option(
        True, "--baselines/--no-baselines", help="Fit the baselines (AICc)."
    ),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Render the plots."),
    profile: bool = typer.Option(
        False,
        "--profile",
        help="Also profile-likelihood intervals of the shape parameters (linear loss only).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object (model, params, d_star, ...)."
    ),
) -> None:
    with user_errors():
        if profile and loss != "linear":
            raise InvalidParameterError(
                f"`--profile` needs `--loss linear` (least squares); got {loss!r}."
            )
        from fits.analysis._fit import fit_tradeoff
        from fits.exceptions import DegenerateBootstrapWarning
        from fits.results._report import write_report
        from fits.runs._load import load_runs

        user_warnings = (UserWarning, DegenerateBootstrapWarning)  # loaders, bootstrap
        with warnings_to_stderr(*user_warnings):
            table = load_runs(
                runs,
                format=fmt,
                columns=parse_assignments(column, "--column") or None,
                pattern=pattern,
                metadata=metadata,
            )
        with warnings_to_stderr(*user_warnings):
            result = fit_tradeoff(
                table,
                model=model,
                gap=gap,
                rate=rate,
                delta=delta,
                loss=loss,
                f_scale=f_scale,
                target=target,
                weights=weights,
                train_model=train_model,
                bounds=_bounds(bound) or None,
                grid=grid,
                exclude=exclude,
                n_resamples=bootstrap,
                bootstrap=bootstrap_method,
                confidence_level=confidence,
                cv=cv,
                baselines=baselines,
                rng=seed,
                progress=True,
            )
        robust = None
        if examples is not None:
            from fits.analysis._robustness import threshold_robustness
            from fits.runs._tables import read_any_table

            robust = threshold_robustness(
                table,
                read_any_table(examples),
                score=score_column,
                thresholds=parse_float_list(thresholds, "--thresholds") if thresholds else None,
                n_resamples=min(bootstrap, 200),
                model=result.model.spec,
                loss=loss,
                target=target,
                weights=weights,
                train_model=train_model,
                exclude=exclude,
                rng=seed,
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
        from fits.analysis._select import select_examples, write_table

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
