"""Command ``tradeoff sweep compress``: the base-relative compression certificate of sweep cells.

Registered on the ``sweep`` group of :mod:`fits.cli._sweep`. Heavy imports happen inside.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from fits.cli._sweep import sweep_app
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_output_path, print_json, user_errors


@sweep_app.command("compress")
def sweep_compress(
    sweep: Path = typer.Argument(..., help="A sweep folder (its spec gives base, task, data)."),
    d: list[float] = typer.Option(..., "--d", help="Difficulty of the cell (repeatable)."),
    n: int = typer.Option(..., "--n", help="Budget of the cell: its n training rows."),
    seed: int = typer.Option(0, "--seed", help="The run's seed (its training rows)."),
    out: Path = typer.Option(..., "--out", help="JSON file of the records (written atomically)."),
    dimension: int = typer.Option(
        2048, "--dimension", help="D, subspace dimension (on the grid 128 .. 32768, powers of 2)."
    ),
    levels: int = typer.Option(5, "--levels", help="K, quantisation levels (3, 5, ..., 17)."),
    steps: int = typer.Option(3000, "--steps", help="Adam steps of the subspace training."),
    lr: float = typer.Option(1e-2, "--lr", help="Learning rate of the subspace training."),
    qat_steps: int = typer.Option(600, "--qat-steps", help="Quantisation-aware steps."),
    qat_lr: float = typer.Option(3e-3, "--qat-lr", help="Quantisation-aware learning rate."),
    qat_select_every: int = typer.Option(
        100,
        "--qat-select-every",
        help="Measure the quantised training error every this many quantisation-aware steps and "
        "keep the lowest (free in the bound; 0: keep the last; 'ste' only).",
    ),
    projection_seed: int = typer.Option(
        0, "--projection-seed", help="Seed of the random projection (0 .. 3, paid in the code)."
    ),
    quantiser: str = typer.Option(
        "ste",
        "--quantiser",
        help="'ste' (straight-through) or 'incremental' (fix coordinates to levels in phases).",
    ),
    full_steps: int = typer.Option(
        0, "--full-steps", help="Steps of a reference full fine-tune (0: skip; the run is one)."
    ),
    heldout: int = typer.Option(1024, "--heldout", help="Fresh rows for held-out errors."),
    subspace_cache: Path | None = typer.Option(
        None,
        "--subspace-cache",
        help="Folder where the trained subspace is saved and reused by a later attempt with the "
        "same cell and subspace settings (e.g. other --levels or --qat-*): most of the time.",
    ),
    threads: int = typer.Option(1, "--threads", help="torch threads."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start afresh even if --out holds finished cells."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the records as JSON."),
) -> None:
    """A compression (Occam) certificate of a sweep cell, relative to the base (the paper's complexity).

    The cell's n training rows (difficulty d, seed) train a D-dimensional random subspace around the sweep's base; the coordinates are quantised to K levels and arithmetic-coded, and the certificate is kl^-1(training error of the quantised model, (code length + ln 1/delta) / n): no Monte Carlo, no data-dependent prior. Reported beside it: the base's own certificate on the same rows (0 bits), held-out errors on fresh rows of D_train(d), and the code a certificate below the guessing error would allow. Minutes to tens of minutes on a CPU (D = 2048, 3000 steps, n = 4096: about 15 min on one core).

    Each cell's record is added to --out (atomically) as soon as it is done; a rerun with the same options keeps the finished cells of --out and computes only the others (--overwrite starts afresh).

    Example: tradeoff sweep compress runs/ --d 4 --n 4096 --seed 0 --dimension 4096 --out c.json
    """
    with user_errors():
        check_output_path(out, [sweep], kind="file", overwrite=overwrite)
        import torch

        from fits.experiments import compression_run
        from fits.experiments._compression_run import sweep_difficulties
        from measurement import CompressionConfig
        from pacbound.support import atomic_path

        torch.set_num_threads(threads)
        cfg = CompressionConfig(
            dimension=dimension,
            levels=levels,
            seed=projection_seed,
            steps=steps,
            lr=lr,
            qat_steps=qat_steps,
            qat_lr=qat_lr,
            qat_select_every=qat_select_every if quantiser == "ste" else 0,
            quantiser=quantiser,
            full_steps=full_steps,
        )
        say = (lambda _msg: None) if as_json else (lambda msg: print(msg, file=sys.stderr))
        sweep_difficulties(sweep, d)  # every cell is known before the first is computed
        key = {"n": n, "seed": seed, "sweep": str(sweep), "config": cfg.to_dict()}
        records = [] if overwrite else _finished_cells(out, key)
        for difficulty in d:
            if any(r["difficulty"] == float(difficulty) for r in records):
                say(f"[d={difficulty:g}] finished in {out}: kept")
                continue
            records += compression_run(
                [difficulty],
                n,
                heldout=heldout,
                data_seed=seed,
                config=cfg,
                sweep=sweep,
                log=say,
                subspace_cache=subspace_cache,
            )
            with atomic_path(out) as tmp:
                Path(tmp).write_text(json.dumps(records, indent=2))
        records = [r for difficulty in d for r in records if r["difficulty"] == float(difficulty)]
        if as_json:
            print_json(records)
        else:
            for r in records:
                typer.echo(
                    f"d = {r['difficulty']:g}, n = {r['n']}: certificate {r['certificate']:.4f} "
                    f"(base {r['base_certificate']:.4f}); written to {out}"
                )


def _finished_cells(out: Path, key: dict) -> list[dict]:
    """The records of ``out``, all made with the cell options ``key`` (n, seed, sweep, config);
    none when ``out`` does not exist. A file that is not such a record list, or that holds a
    record made with other options, is refused (it would be overwritten)."""
    if not out.exists():
        return []
    try:
        records = json.loads(out.read_text(encoding="utf-8"))
        if not isinstance(records, list) or not all(
            isinstance(r, dict) and "difficulty" in r and "config" in r for r in records
        ):
            raise ValueError("not a list of compression records")
    except ValueError as exc:
        raise InvalidParameterError(
            f"`--out` {out} exists and is not a file of `tradeoff sweep compress` records "
            f"({exc}); pass --overwrite to replace it, or choose another file."
        ) from None
    wanted = json.loads(json.dumps(key))
    other = [r for r in records if any(r.get(k) != v for k, v in wanted.items())]
    if other:
        raise InvalidParameterError(
            f"`--out` {out} holds {len(other)} record(s) made with other options (n, seed, sweep "
            "or the compression settings differ); pass --overwrite to replace them, or choose "
            "another file."
        )
    return records
