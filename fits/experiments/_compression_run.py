"""The compression (Occam) certificate on the synthetic task: data from :mod:`fits.synthetic`.

One fine-tune per difficulty d (a Gaussian op-count mixture centred at d, width 1.5): n training
problems (the bound set), ``heldout`` fresh problems of the same distribution for the held-out
in-distribution error, and :func:`measurement.compression_certificate` on the shipped base.
With ``sweep`` (a sweep folder), the cells of that sweep instead: its base, its task and
difficulty mixtures, the very training rows of its run (d, n, seed), and held-out rows from the
stream the per-run certificates use (:data:`fits.experiments._certify_sweep.HELD_OUT_SEED`).
Run as a script: ``python -m fits.experiments._compression_run --d 2 4 --n 1024 --out f.json``
(``--sweep paper/runs/calibrated-epochs --seed 0`` for a sweep's cells).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fits.synthetic import (
    PretrainConfig,
    encode_problems,
    find_synthetic_base,
    ops_mixture,
    sample_training_set,
    stable_seed,
)
from pacbound.exceptions import InvalidParameterError
from pacbound.support import atomic_path

__all__ = ["compression_run"]


def compression_run(
    difficulties: Sequence[float] = (2.0, 4.0),
    n: int = 1024,
    *,
    heldout: int = 1024,
    data_seed: int = 0,
    config: Any = None,
    base: str | Path | None = None,
    sweep: str | Path | None = None,
    log: Any = print,
    subspace_cache: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Certify one compressed fine-tune per difficulty; return one record per d.

    Each record holds ``difficulty``, ``n``, ``certificate`` (the bound), the certificate's
    ``to_dict()`` and ``seconds`` (wall-clock of the whole run of that d). With ``sweep``, the
    data are the sweep's run (d, n, seed ``data_seed``) and its base is the base.
    """
    if sweep is not None:
        return _sweep_cells(sweep, difficulties, n, heldout, data_seed, config, log, subspace_cache)
    from measurement import (
        CompressionConfig,
        TokenizedExamples,
        compression_certificate,
        load_tokenizer,
    )

    folder = Path(base) if base is not None else find_synthetic_base()
    if folder is None:
        raise InvalidParameterError(
            "`base` must be given: the shipped synthetic base was not found; got None."
        )
    tok = load_tokenizer(folder)
    fmt = PretrainConfig().task_format
    cfg = config or CompressionConfig()
    out = []
    for d in difficulties:
        dist = ops_mixture(float(d), max_ops=fmt.max_ops)
        train = sample_training_set(dist, n, data_seed, fmt)
        fresh = sample_training_set(
            dist, heldout, stable_seed("compression-heldout", data_seed) % 2**31, fmt
        )
        t0 = time.perf_counter()
        cert = compression_certificate(
            folder,
            TokenizedExamples(*map(tuple, encode_problems(tok, train))),
            cfg,
            heldout=TokenizedExamples(*map(tuple, encode_problems(tok, fresh))),
            pad_id=tok.pad_token_id,
            log=lambda msg, d=d: log(f"[d={d:g}] {msg}"),
            subspace_cache=subspace_cache,
        )
        log(str(cert))
        out.append(_record(d, n, cert, time.perf_counter() - t0, cfg))
    return out


def _record(d: float, n: int, cert: Any, seconds: float, cfg: Any, **extra: Any) -> dict:
    return {
        "difficulty": float(d),
        "n": n,
        "certificate": cert.bound,
        "base_certificate": cert.base_bound,
        "heldout_error": (cert.heldout_errors or {}).get("quantised"),
        "seconds": seconds,
        "result": cert.to_dict(),
        "config": cfg.to_dict(),
        **extra,
    }


def sweep_difficulties(sweep: str | Path, difficulties: Sequence[float]) -> dict[float, Any]:
    """The sweep's difficulty objects of ``difficulties`` by value; a value the sweep does not
    have is refused (before any work is done)."""
    from fits.sweep._runner import load_plan
    from fits.sweep._tasks import make_task

    by_value = {float(diff.value): diff for diff in make_task(load_plan(sweep).spec).difficulties()}
    for d in difficulties:
        if float(d) not in by_value:
            raise InvalidParameterError(
                f"`d` must be one of the sweep's difficulties {sorted(by_value)}; got {d!r}."
            )
    return {float(d): by_value[float(d)] for d in difficulties}


def _sweep_cells(
    sweep: str | Path,
    difficulties: Sequence[float],
    n: int,
    heldout: int,
    seed: int,
    config: Any,
    log: Any,
    subspace_cache: str | Path | None = None,
) -> list[dict[str, Any]]:
    """:func:`compression_run` on the cells (d, n, ``seed``) of a sweep folder."""
    from fits.experiments._certify_sweep import HELD_OUT_SEED
    from fits.sweep._bases import resolve_base
    from fits.sweep._runner import load_plan
    from fits.sweep._tasks import make_task
    from fits.sweep._train import encode_records
    from measurement import (
        CompressionConfig,
        TokenizedExamples,
        compression_certificate,
        load_tokenizer,
        occam_code_allowed,
    )

    spec = load_plan(sweep).spec
    guess = 1.0 - 1.0 / float(spec["task.prime"])
    task = make_task(spec)
    folder = resolve_base(spec)
    tok = load_tokenizer(folder)
    cfg = config or CompressionConfig()
    by_value = sweep_difficulties(sweep, difficulties)
    out = []
    for d in difficulties:
        diff = by_value[float(d)]

        def examples(records: list) -> Any:
            return TokenizedExamples(*map(tuple, encode_records(tok, records, chat=task.chat)))

        train = examples(task.train_records(diff, n, seed))
        fresh = examples(task.train_records(diff, heldout, HELD_OUT_SEED + seed))
        t0 = time.perf_counter()
        cert = compression_certificate(
            folder,
            train,
            cfg,
            heldout=fresh,
            pad_id=tok.pad_token_id,
            log=lambda msg, d=d: log(f"[d={d:g}] {msg}"),
            subspace_cache=subspace_cache,
        )
        log(str(cert))
        allowed = occam_code_allowed(cert.train_error, guess, n, cfg.delta)
        log(
            f"[d={d:g}] a certificate below the guessing error {guess:.3f} needs a code under "
            f"{max(allowed, 0.0):.0f} nats at this training error; this one is "
            f"{cert.code_nats:.0f}"
        )
        out.append(
            _record(
                d,
                n,
                cert,
                time.perf_counter() - t0,
                cfg,
                sweep=str(sweep),
                seed=seed,
                label=diff.label,
                heldout_errors=cert.heldout_errors,
                guess_error=guess,
                code_allowed_nats=max(allowed, 0.0),
            )
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see module docstring)."""
    import torch

    from measurement import CompressionConfig

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--d", type=float, nargs="+", default=[2.0, 4.0])
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--heldout", type=int, default=1024)
    p.add_argument("--dimension", type=int, default=128)
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--qat-steps", type=int, default=60)
    p.add_argument("--qat-lr", type=float, default=1e-3)
    p.add_argument("--qat-select-every", type=int, default=0)
    p.add_argument("--projection-seed", type=int, default=0)
    p.add_argument("--quantiser", choices=("ste", "incremental"), default="ste")
    p.add_argument("--full-steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--sweep", type=Path, default=None, help="certify the cells of this sweep")
    p.add_argument("--seed", type=int, default=0, help="data seed (with --sweep: the run's)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        cfg = CompressionConfig(
            dimension=args.dimension,
            levels=args.levels,
            seed=args.projection_seed,
            steps=args.steps,
            lr=args.lr,
            qat_steps=args.qat_steps,
            qat_lr=args.qat_lr,
            qat_select_every=args.qat_select_every,
            quantiser=args.quantiser,
            full_steps=args.full_steps,
        )
        records = compression_run(
            args.d, args.n, heldout=args.heldout, data_seed=args.seed, config=cfg, sweep=args.sweep
        )
    except InvalidParameterError as exc:  # bad input: one line, exit 2 (the CLI's convention)
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
