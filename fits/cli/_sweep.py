"""Commands ``tradeoff data synth|pretrain``, ``tradeoff sweep run|status`` and ``tradeoff demo``.

Heavy libraries (torch, transformers, ray) are imported inside the command functions, so that
``tradeoff --help`` stays fast. Every body runs inside :func:`pacbound.support._cli.user_errors`.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from pacbound.support import (
    check_output_path,
    make_app,
    mark_output_dir,
    print_json,
    user_errors,
)

app = make_app()
#: The [certify] fields of a sweep spec that are options of fits.experiments.certify_sweep.
CERTIFY_OPTIONS = ("prior_fraction", "split_seed", "held_out", "delta")
data_app = make_app(
    no_args_is_help=True,
    help="Synthetic task data: generate problems, pre-train the synthetic base model.",
)
sweep_app = make_app(
    no_args_is_help=True,
    help="Fresh SFT sweeps over difficulty x budget x seed (local or Ray), resumable.",
)
app.add_typer(data_app, name="data")
app.add_typer(sweep_app, name="sweep")


def _command_line() -> str:
    return "tradeoff " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@data_app.command("synth")
def data_synth(
    out: Path = typer.Option(
        ..., "--out", help="Output table: .jsonl, .json, .csv, .tsv or .parquet."
    ),
    ops: str = typer.Option("2-8", "--ops", help="Op-count range, uniform over it: '2-8' or '4'."),
    n: int = typer.Option(10000, "-n", "--n", help="Number of problems."),
    seed: int = typer.Option(0, "--seed", help="Seed (the same seed gives the same problems)."),
    max_ops: int = typer.Option(
        None, "--max-ops", help="Operation slots per prompt (default: max(8, upper end of --ops))."
    ),
    prime: int = typer.Option(7, "--prime", help="Arithmetic modulus (a prime)."),
    center: float = typer.Option(
        None, "--center", help="Instead of uniform: a Gaussian mixture over op counts at d."
    ),
    width: float = typer.Option(1.5, "--width", help="Scale of the --center mixture."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Generate iGSM-like problems (prompt, completion, answer, ops) to a table file.

    Example: tradeoff data synth --ops 2-8 -n 10000 --seed 0 --out synth.jsonl
    """
    with user_errors():
        check_output_path(out, [], kind="file")
        from collections import Counter

        from fits.synthetic._data import parse_ops_range, sample_training_set, write_problems
        from fits.synthetic._distributions import ops_mixture, uniform_ops
        from fits.synthetic._generator import TaskFormat
        from pacbound.support import check_positive_int

        n = check_positive_int(n, "n")
        lo, hi = parse_ops_range(ops, "ops")
        fmt = TaskFormat(max_ops=max_ops if max_ops is not None else max(8, hi), prime=prime)
        dist = (
            ops_mixture(center, width, fmt.max_ops)
            if center is not None
            else uniform_ops(lo, hi, fmt.max_ops)
        )
        problems = sample_training_set(dist, n, seed, fmt)
        write_problems(problems, out)
        counts = dict(sorted(Counter(p.ops for p in problems).items()))
        summary = {
            "out": str(out),
            "n": n,
            "seed": seed,
            "distribution": dist.to_dict(),
            "task": fmt.to_dict(),
            "ops_counts": counts,
        }
        if as_json:
            print_json(summary)
        else:
            typer.echo(f"wrote {n} problems to {out} ({dist.label}); per op count: {counts}")
            typer.echo(f"example: {problems[0].prompt}  =>  {problems[0].completion}")


@data_app.command("pretrain")
def data_pretrain(
    out: Path = typer.Option(
        None, "--out", help="Output folder (default: the user cache, keyed by the config hash)."
    ),
    ops: str = typer.Option("1-4", "--ops", help="Op-count range of the pre-training problems."),
    max_ops: int = typer.Option(8, "--max-ops", help="Operation slots per prompt."),
    prime: int = typer.Option(7, "--prime", help="Arithmetic modulus."),
    steps: int = typer.Option(1200, "--steps", help="Optimiser steps (fresh problems each)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Problems per step."),
    lr: float = typer.Option(2e-3, "--lr", help="Peak AdamW learning rate."),
    warmup_steps: int = typer.Option(100, "--warmup-steps", help="Linear warm-up steps."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weights and the problem stream."),
    hidden_size: int = typer.Option(128, "--hidden-size"),
    num_layers: int = typer.Option(2, "--num-layers"),
    threads: int = typer.Option(None, "--threads", help="torch threads (default: torch's)."),
    force: bool = typer.Option(False, "--force", help="Pre-train even if a matching base exists."),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Progress on stderr (a line per 100 steps in logs)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace --out even if it is a folder this toolkit did not write.",
    ),
) -> None:
    """Pre-train the synthetic base model (small Llama) on a range of operation counts.

    Without --out the base goes to the user cache ($XDG_CACHE_HOME/sft-tradeoff/bases/...), where sweeps and the demo find it; an existing matching base (shipped or cached) is reused unless --force. About 5 minutes on 2 CPU cores with the defaults.

    Example: tradeoff data pretrain --ops 1-4 --steps 1200 --threads 2
    """
    with user_errors():
        if out is not None:
            check_output_path(out, [], kind="dir", overwrite=overwrite)
        from rich.progress import Progress

        from fits.synthetic._data import parse_ops_range
        from fits.synthetic._model import (
            PretrainConfig,
            SyntheticModelConfig,
            base_cache_dir,
            find_synthetic_base,
        )
        from fits.synthetic._pretrain import pretrain_synthetic_base

        cfg = PretrainConfig(
            ops=parse_ops_range(ops, "ops"),
            max_ops=max_ops,
            prime=prime,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            warmup_steps=warmup_steps,
            seed=seed,
            model=SyntheticModelConfig(
                hidden_size=hidden_size,
                num_layers=num_layers,
                intermediate_size=4 * hidden_size,
            ),
        )
        existing = find_synthetic_base(cfg)
        dest = Path(out) if out is not None else base_cache_dir(cfg)
        if existing is not None and not force and out is None:
            path = existing
            reused = True
        else:
            reused = False
            show = progress and not as_json
            interactive = sys.stderr.isatty() and show
            with Progress(transient=True, disable=not interactive) as bar:
                task = bar.add_task("pre-training", total=cfg.steps)

                def on_step(step: int, total: int, loss: float) -> None:
                    bar.update(task, completed=step, description=f"pre-training (loss {loss:.3f})")
                    if show and not interactive and (step % 100 == 0 or step == total):
                        typer.echo(f"pre-training step {step}/{total} loss {loss:.4f}", err=True)

                path = pretrain_synthetic_base(
                    cfg, dest, threads=threads, progress=on_step, command=_command_line()
                )
        import json

        meta = json.loads((path / "pretrain_meta.json").read_text())
        summary = {
            "path": str(path),
            "reused": reused,
            "config_hash": cfg.config_hash(),
            "final_loss": meta["final_loss"],
            "train_seconds": meta["train_seconds"],
            "accuracy_per_op": {
                k.removesuffix("_accuracy"): v
                for k, v in meta["eval"].items()
                if k.startswith("ops") and k.endswith("_accuracy")
            },
        }
        if as_json:
            print_json(summary)
        else:
            verb = "reused" if reused else "pre-trained"
            typer.echo(f"{verb} base {cfg.name} at {path}")
            accs = " ".join(f"{v:.2f}" for v in summary["accuracy_per_op"].values())
            typer.echo(f"final loss {meta['final_loss']:.4g}; accuracy per op count: {accs}")


@sweep_app.command("run")
def sweep_run(
    spec: Path = typer.Argument(..., help="Sweep spec file (.toml, .yaml or .json)."),
    out: Path = typer.Option(..., "--out", help="Sweep folder (created; a rerun resumes it)."),
    backend: str = typer.Option("local", "--backend", help="local or ray."),
    address: str = typer.Option(
        None, "--address", help="Ray: join the cluster at this address (default: start one)."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        help="Local: parallel runs (default: spec, GPU count or 1). "
        "Ray: CPUs of the local cluster.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and list the runs only."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Write into --out even if this toolkit did not create it."
    ),
) -> None:
    """Run every missing run of a sweep (difficulty x budget x seed x budget mode).

    Each run is a standard Hugging Face output folder under OUT/runs/<run_id>/ with weights, trainer_state.json, all_results.json (per-slice eval loss and accuracy), run_meta.json and the weight statistics against the base, so `tradeoff fit OUT` reads it directly. Finished runs are skipped; a killed sweep loses at most the runs in flight.

    Examples:

    tradeoff sweep run sweep.toml --out runs/

    tradeoff sweep run sweep.toml --out runs/ --backend ray --address auto

    """
    with user_errors():
        from fits.sweep._api import run_sweep
        from fits.sweep._spec import load_spec

        check_output_path(out, [spec], kind="dir", overwrite=overwrite)
        spec_obj = load_spec(spec)
        if dry_run:
            from fits.sweep._runner import prepare_sweep

            plan = prepare_sweep(spec_obj, out, write=False)
            pending = {r.run_id for r in plan.pending()}
            rows = [{**r.to_dict(), "pending": r.run_id in pending} for r in plan.runs]
            if as_json:
                print_json({"root": str(out), "runs": rows})
            else:
                typer.echo(str(spec_obj))
                for r in plan.runs:
                    typer.echo(f"  {'pending' if r.run_id in pending else 'done   '} {r}")
            return
        mark_output_dir(out)
        result = run_sweep(
            spec_obj,
            out,
            backend=backend,
            address=address,
            workers=workers,
            progress=progress and not as_json,
        )
        certs = None
        if spec_obj["certify.enabled"] and not result.failed:
            certs = _certify_sweep_folder(
                out,
                None,
                workers=workers or spec_obj["resources.workers"] or 1,
                progress=progress and not as_json,
                plots=True,
                **{k: spec_obj[f"certify.{k}"] for k in CERTIFY_OPTIONS},
            )
        if as_json:
            print_json(result if certs is None else {**result.to_dict(), "certificates": certs})
        else:
            typer.echo(str(result))
            if certs is not None:
                typer.echo(str(certs))
        if result.failed:
            raise typer.Exit(1)


@sweep_app.command("status")
def sweep_status_cmd(
    sweep: Path = typer.Argument(..., help="Sweep folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Table of the runs of a sweep folder: done, running, failed or pending.

    Example: tradeoff sweep status runs/
    """
    with user_errors():
        from fits.sweep._status import sweep_status

        status = sweep_status(sweep)
        if as_json:
            print_json(status)
        else:
            typer.echo(str(status))


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Output folder (resumable)."),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="5 difficulties x 2 budgets x 1 seed (about 2.5 minutes on 2 cores; 1.5 without "
        "the certificates).",
    ),
    workers: int = typer.Option(2, "--workers", help="Parallel 1-thread training processes."),
    n_resamples: int = typer.Option(
        None, "--n-resamples", help="Bootstrap refits of the fit (default 200 quick, 500 full)."
    ),
    steps_control: bool = typer.Option(
        False,
        "--steps-control",
        help="Also run each cell at a fixed number of steps (separates n from compute; ~2x time).",
    ),
    certify: bool = typer.Option(
        True,
        "--certify/--no-certify",
        help="Certify each run of the first seed (a learnt prior on half its rows; about +60% "
        "time for --quick, +35% for the full demo).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Write into --out even if this toolkit did not create it."
    ),
) -> None:
    """The whole toolkit end to end on the synthetic task: sweep, KL, fit, d*(n), report.

    Fine-tunes the shipped small base model on difficulty mixtures at several budgets (CPU, no download), measures weight distances and per-slice losses, fits the tradeoff with bootstrap intervals, writes OUT/fit.json and OUT/report.html, and says whether d* moved toward harder data as n grew. Full: 5 difficulties x 3 budgets x 2 seeds (about 7 minutes on 2 cores, 9.5 with the in-distribution certificates of the first seed; --no-certify skips them). A rerun after an interruption continues where it stopped.

    Example: tradeoff demo --quick --out demo-out
    """
    with user_errors():
        from fits.experiments._demo import run_demo

        check_output_path(out, [], kind="dir", overwrite=overwrite)
        mark_output_dir(out)
        result = run_demo(
            out,
            quick=quick,
            workers=workers,
            n_resamples=n_resamples,
            progress=progress and not as_json,
            steps_control=steps_control,
            certify=certify,
        )
        if as_json:
            print_json(result)
        else:
            typer.echo(str(result))


@sweep_app.command("examples")
def sweep_examples(
    sweep: Path = typer.Argument(..., help="Sweep folder."),
    out: Path = typer.Option(
        ..., "--out", help="Output table (.csv, .tsv, .jsonl, .json or .parquet)."
    ),
) -> None:
    """Write each complete run's training examples with their difficulty scores.

    One row per (run, example): run_id, example index, score (the example's difficulty: op count for the synthetic task, the difficulty column for a dataset). The subsets are regenerated from the sweep's spec (they are deterministic), so nothing is stored twice. This is the table that `tradeoff fit --examples` uses for the threshold-robustness check.

    Example: tradeoff sweep examples runs/ --out examples.csv
    """
    with user_errors():
        check_output_path(out, [sweep], kind="file")
        from fits.sweep._examples import sweep_examples as examples_of
        from pacbound.support import write_table

        frame = examples_of(sweep)
        write_table(frame, out)
        typer.echo(f"wrote {len(frame)} examples of {frame['run_id'].nunique()} runs to {out}")


@sweep_app.command("base-eval")
def sweep_base_eval(
    sweep: Path = typer.Argument(..., help="Sweep folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Score the base again."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Score the sweep's base on its test set (SWEEP/base_eval.json), like its runs.

    A synthetic base carries its own evaluation; a base the sweep did not pre-train (e.g.
    SmolLM2 learning the synthetic task) needs this before the in-distribution error tables
    and the "beats the base" comparisons can be made. Uses the sweep's evaluation code, test
    set, chat rendering and decoding limit; the metric names are the runs' (eval_test_accuracy,
    eval_ops<k>_accuracy, ...).

    Example: tradeoff sweep base-eval runs/
    """
    with user_errors():
        from fits.sweep import evaluate_sweep_base

        metrics = evaluate_sweep_base(sweep, overwrite=overwrite)
        if as_json:
            print_json(metrics)
        else:
            typer.echo(
                f"base {metrics['base_model']}: test accuracy "
                f"{metrics['eval_test_accuracy']:.3f} on {metrics['eval_test_n']} problems "
                f"({metrics['eval_seconds']:.0f} s); written to {Path(sweep) / 'base_eval.json'}"
            )


@sweep_app.command("certify")
def sweep_certify(
    sweep: Path = typer.Argument(..., help="A sweep folder (full fine-tunes, synthetic task)."),
    out: Path = typer.Option(
        None, "--out", help="Output folder (default: SWEEP/certificates; a rerun reuses it)."
    ),
    seeds: str = typer.Option(
        None, "--seeds", help="Only these seeds, comma-separated (default: every seed)."
    ),
    workers: int = typer.Option(
        None, "--workers", help="Parallel 1-thread processes (default: the spec's workers or 1)."
    ),
    prior_fraction: float = typer.Option(
        None, "--prior-fraction", help="Share of each run's rows for the prior run (spec: 0.5)."
    ),
    split_seed: int = typer.Option(None, "--split-seed", help="Seed of the split (spec: 0)."),
    held_out: int = typer.Option(
        None, "--held-out", help="Fresh samples of D_train(d) for held-out errors (spec: 256)."
    ),
    delta: float = typer.Option(
        None, "--delta", help="Confidence budget of each certificate (spec: 0.025)."
    ),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Render OUT/plots/*.png."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """In-distribution certificates for every finished run of a sweep, and d* through them.

    Per run: a prior run fine-tuned from the base on a random half of the run's rows (fixed in advance, seed recorded), certified as a point mass on the other half by the exact binomial tail (KL = 0, no Monte Carlo); the base model certified on the same rows; 0-1 errors on fresh samples of D_train(d) for the fine-tune, the prior run and the base, with the binomial test-set bound on those samples beside them. Then per budget: the empirical d* against the minimiser of certificate + TV(test, train(d)). Defaults come from the spec's certify table (certify.prior_fraction, ...). Writes OUT/<run_id>/certificate.json, OUT/summary.json, OUT/certificates.csv and the plots (certificates against held-out errors per d and n; d*(n) against the bound minimiser).

    Example: tradeoff sweep certify runs/ --workers 2
    """
    with user_errors():
        from fits.sweep._runner import load_plan
        from pacbound.support import parse_int_list

        spec = load_plan(sweep).spec
        given = dict(
            zip(CERTIFY_OPTIONS, (prior_fraction, split_seed, held_out, delta), strict=True)
        )
        options = {k: spec[f"certify.{k}"] if v is None else v for k, v in given.items()}
        result = _certify_sweep_folder(
            sweep,
            out,
            seeds=None if seeds is None else parse_int_list(seeds, "seeds"),
            workers=workers or spec["resources.workers"] or 1,
            progress=progress and not as_json,
            plots=plots,
            **options,
        )
        if as_json:
            print_json(result)
        else:
            typer.echo(str(result))


def _certify_sweep_folder(
    sweep: Path, out: Path | None, *, progress: bool, plots: bool, **options
) -> object:
    """:func:`fits.experiments.certify_sweep` with a progress bar on stderr, and its plots."""
    from rich.progress import Progress

    from fits.experiments import CERT_DIR, certify_sweep

    hidden = not progress or not sys.stderr.isatty()
    with Progress(transient=True, disable=hidden) as bar:
        task = bar.add_task("certifying runs (a prior run each)", total=None)

        def on_run(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if hidden and progress:
                print(f"certified {done} of {total} runs", file=sys.stderr, flush=True)

        result = certify_sweep(sweep, out, progress=on_run, **options)
    if plots:
        from fits import save_chart
        from fits.sweep._charts import certificate_charts

        folder = (Path(out) if out is not None else Path(sweep) / CERT_DIR) / "plots"
        for name, chart in certificate_charts(result).items():
            save_chart(chart, folder / name)
    return result


@sweep_app.command("theory")
def sweep_theory(
    sweep: Path = typer.Argument(..., help="A synthetic-task sweep folder."),
    out: Path = typer.Option(..., "--out", help="Output folder (theory.json, CSV, plots)."),
    gibbs_samples: int = typer.Option(
        40, "--gibbs-samples", help="Posterior draws per sigma (0: plug-in bound only)."
    ),
    gibbs_batch: int = typer.Option(32, "--gibbs-batch", help="Training problems per draw."),
    delta: float = typer.Option(0.05, "--delta", help="Confidence budget of the bound."),
    threads: int = typer.Option(1, "--threads", help="torch threads."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Render the plots."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace --out even if it is a folder this toolkit did not write.",
    ),
) -> None:
    """Theory against empirics: every term of the PAC-Bayes bound per run of a synthetic sweep.

    Per run: training error, KL = ||w_ft - w_base||^2 / (2 sigma^2) at the sigma of a grid fixed in advance (13 values, 1e-3 to 1; the union bound is paid), a Monte-Carlo certificate of the Gibbs training risk, and the exact TV between the test and training op-count distributions. Prints where the bound is vacuous and whether its minimiser over d tracks the empirical d*(n), and per run how far it is from a certificate below the guessing error: the KL that would allow it and the factor F by which the run's KL would have to shrink (theory_headroom.csv).

    Example: tradeoff sweep theory runs/ --out theory/
    """
    with user_errors():
        check_output_path(out, [sweep], kind="dir", overwrite=overwrite)
        import torch

        from fits.experiments._theory import TheoryConfig, theory_for_sweep
        from fits.sweep._charts import theory_charts

        torch.set_num_threads(threads)
        from rich.progress import Progress

        cfg = TheoryConfig(delta=delta, gibbs_samples=gibbs_samples, gibbs_batch=gibbs_batch)
        hidden = as_json or not progress or not sys.stderr.isatty()
        with Progress(transient=True, disable=hidden) as bar:
            task = bar.add_task("bound terms per run", total=None)

            def on_run(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = theory_for_sweep(sweep, cfg, progress=on_run)
        from pacbound.support import atomic_dir

        with atomic_dir(out) as tmp:  # the folder is replaced as a unit, when complete
            result.save(tmp)
            if plots:
                from fits import save_chart

                for name, chart in theory_charts(result).items():
                    save_chart(chart, tmp / name)
        if as_json:
            print_json(result)
        else:
            typer.echo(str(result))
