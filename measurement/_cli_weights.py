"""``tradeoff weights`` and ``tradeoff kl``: weight statistics and Gaussian KL from checkpoints.

torch, pandas and the streaming code are imported inside the commands, so that
``tradeoff --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from measurement._cli_options import ADAPTER, PROGRESS, adapter_default_base, local_model
from pacbound.exceptions import InvalidParameterError
from pacbound.support import (
    check_output_path,
    make_app,
    parse_float_list,
    print_json,
    print_result,
    split_names,
    user_errors,
)

app = make_app()

_JOURNAL = ".weight_stats.journal.jsonl"

_WEIGHTS_HELP = """Per-tensor statistics of a fine-tune against its base, in one streaming pass.

Writes OUT/weight_stats.parquet and OUT/weight_stats.json (plus adapter_stats.parquet for an adapter): one row per tensor pair with numel, squared delta, squared norms, max |delta| and the count of unchanged weights. Every Gaussian KL is computed from these files (`tradeoff kl --stats OUT`). A killed run resumes where it stopped.

Examples:

  tradeoff weights base/ finetuned/ --out stats/

  tradeoff weights base/ --adapter lora-adapter/ --out stats/ --base-norms

  tradeoff weights --adapter lora-adapter/ --out stats/    # BASE: the one the adapter names

  tradeoff weights Qwen/Qwen2.5-0.5B finetuned/ --out stats/    # a hub id, from the local HF cache
"""

_KL_HELP = """KL(Q||P) between Gaussians around the fine-tuned and the base weights, and bounds.

Q = N(w_ft, sigma^2), P = N(w_base, sigma_prior^2), isotropic or scaled by each base tensor's RMS (--per-tensor-scale). For a LoRA adapter, --space adapter uses the adapter-space family (posterior over A, B only, prior at their data-free initialisation). Given --emp-risk, -n and --delta, also the kl-inverse, McAllester and Catoni bounds; a sigma grid fixed in advance (--sigma-grid) is charged through a union bound.

Examples:

  tradeoff kl --stats stats/ --sigma 1e-3 --json

  tradeoff kl base/ finetuned/ --sigma 0.01 --emp-risk 0.12 -n 5000 --delta 0.05

  tradeoff kl --stats stats/ --sigma-grid 1e-4,3e-4,1e-3 --emp-risk 0.10,0.11,0.15 -n 5000 --delta 0.05
"""


# options shared by `weights` and `kl` (the streaming pass)
_ADAPTER_INIT = typer.Option(
    None, "--adapter-init", help="Adapter saved at initialisation: adapter-space prior centre."
)
_BASE_NORMS = typer.Option(
    False,
    "--base-norms",
    help="Adapters: also read the targeted base tensors (needed for --per-tensor-scale).",
)
_CHUNK_MB = typer.Option(256.0, "--chunk-mb", help="Chunk budget in MiB.")
_DEVICE = typer.Option("auto", "--device", help="auto, cpu or cuda.")
_ALLOW_UNPAIRED = typer.Option(
    False, "--allow-unpaired", help="Skip tensors that do not pair instead of failing."
)
_THREADS = typer.Option(
    None, "--threads", help="CPU threads for the pass (1 is faster on a busy machine)."
)


def _chunk_bytes(chunk_mb: float) -> int:
    if not chunk_mb > 0:
        raise InvalidParameterError(f"`--chunk-mb` must be > 0; got {chunk_mb!r}.")
    return max(256, int(chunk_mb * 2**20))


def _measure(
    base: Path | None,
    finetuned: Path | None,
    out: Path | None,
    *,
    adapter: Path | None,
    adapter_init: Path | None,
    base_norms: bool,
    chunk_mb: float,
    device: str,
    allow_unpaired: bool,
    progress: bool,
    threads: int | None,
):  # type: ignore[no-untyped-def]
    """Stream the statistics (resuming from the journal in ``out``) and save them to ``out``.

    BASE and FINETUNED may be hub ids or HF cache folders (resolved offline from the local
    cache), FINETUNED a training output folder (its latest ``checkpoint-*`` when it holds only
    those); BASE None with an adapter is the base the adapter names, when it is local.
    """
    from measurement._weight_statistics import weight_statistics

    if base is None:
        if adapter is None:
            raise InvalidParameterError(
                "`BASE` must be given (it may be left out only with --adapter, whose "
                "adapter_config.json names the base); got no BASE and no --adapter."
            )
        base = adapter_default_base(adapter)
    else:
        base = local_model(base)
    if finetuned is not None:
        finetuned = local_model(finetuned, checkpoints=True)

    if out is not None:  # the statistics files are added beside any others: nothing replaced
        check_output_path(out, [base, finetuned, adapter, adapter_init], kind="dir", replaces=False)

    stats = weight_statistics(
        base,
        finetuned,
        adapter=adapter,
        chunk_bytes=_chunk_bytes(chunk_mb),
        device=device,
        allow_unpaired=allow_unpaired,
        progress=progress,
        base_norms=base_norms,
        adapter_init=adapter_init,
        journal=None if out is None else out / _JOURNAL,
        threads=threads,
    )
    if out is not None:
        stats.save(out)
    return stats


@app.command("weights", help=_WEIGHTS_HELP)
def weights(
    base: Path | None = typer.Argument(
        None,
        help="Base model: HF folder, .safetensors or .bin file, HF cache folder, or a hub id in "
        "the local HF cache. Optional with --adapter: default the base the adapter names.",
    ),
    finetuned: Path | None = typer.Argument(
        None, help="Fine-tuned model (same forms), or a PEFT adapter folder (or use --adapter)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the statistics files."),
    adapter: Path | None = ADAPTER,
    adapter_init: Path | None = _ADAPTER_INIT,
    base_norms: bool = _BASE_NORMS,
    chunk_mb: float = _CHUNK_MB,
    device: str = _DEVICE,
    allow_unpaired: bool = _ALLOW_UNPAIRED,
    threads: int | None = _THREADS,
    progress: bool = PROGRESS,
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    with user_errors():
        stats = _measure(
            base,
            finetuned,
            out,
            adapter=adapter,
            adapter_init=adapter_init,
            base_norms=base_norms,
            chunk_mb=chunk_mb,
            device=device,
            allow_unpaired=allow_unpaired,
            progress=progress and not json_out,
            threads=threads,
        )
        if json_out:
            summary = stats.to_dict()
            summary.pop("rows", None)
            print_json({"out": str(out), **summary})
        else:
            typer.echo(f"{stats}\nwritten: {out}")


@app.command("kl", help=_KL_HELP)
def kl(
    base: Path | None = typer.Argument(
        None,
        help="Base model, as for `tradeoff weights` (or use --stats). Optional with --adapter: "
        "default the base the adapter names.",
    ),
    finetuned: Path | None = typer.Argument(None, help="Fine-tuned model or adapter folder."),
    stats_dir: Path | None = typer.Option(
        None, "--stats", help="Folder written by `tradeoff weights` (instead of BASE FINETUNED)."
    ),
    sigma: float | None = typer.Option(None, "--sigma", help="Posterior standard deviation."),
    sigma_prior: float | None = typer.Option(
        None, "--sigma-prior", help="Prior standard deviation (default: --sigma)."
    ),
    per_tensor_scale: bool = typer.Option(
        False, "--per-tensor-scale", help="sigma is relative to each base tensor's RMS."
    ),
    sigma_grid: str | None = typer.Option(
        None, "--sigma-grid", help="Sigma grid fixed in advance, comma-separated (charged)."
    ),
    rms_floor: float | None = typer.Option(
        None, "--rms-floor", help="With --per-tensor-scale: sigma x max(RMS, this)."
    ),
    space: str = typer.Option("weight", "--space", help="Posterior family: weight or adapter."),
    emp_risk: str | None = typer.Option(
        None,
        "--emp-risk",
        help="Empirical Gibbs risk in [0,1] (one per grid sigma without --sigma).",
    ),
    n: int | None = typer.Option(None, "-n", "--n", help="Examples behind --emp-risk."),
    delta: float | None = typer.Option(None, "--delta", help="Confidence parameter in (0,1)."),
    bound: str = typer.Option(
        "kl,mcallester,catoni", "--bounds", help="Bounds to report (comma-separated)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Also save the statistics measured from BASE FINETUNED here."
    ),
    adapter: Path | None = ADAPTER,
    adapter_init: Path | None = _ADAPTER_INIT,
    base_norms: bool = _BASE_NORMS,
    chunk_mb: float = _CHUNK_MB,
    device: str = _DEVICE,
    allow_unpaired: bool = _ALLOW_UNPAIRED,
    threads: int | None = _THREADS,
    progress: bool = PROGRESS,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    with user_errors():
        from measurement._stats import WeightStats
        from measurement._weight_kl import gaussian_kl, weight_bound

        if stats_dir is not None and (base is not None or finetuned or adapter):
            raise InvalidParameterError(
                "`--stats` must be used instead of BASE FINETUNED, not with them; got both."
            )
        if stats_dir is None and base is None and adapter is None:
            raise InvalidParameterError(
                "`BASE` and FINETUNED (or --adapter) must be given, or `--stats DIR`; got nothing."
            )
        grid = None if sigma_grid is None else parse_float_list(sigma_grid, "--sigma-grid")
        risks = None if emp_risk is None else parse_float_list(emp_risk, "--emp-risk")
        given = [x is not None for x in (risks, n, delta)]
        if any(given) and not all(given):
            raise InvalidParameterError(
                "`--emp-risk`, `-n` and `--delta` must be given together; got "
                + ", ".join(
                    k for k, g in zip(("--emp-risk", "-n", "--delta"), given, strict=True) if g
                )
                + " only."
            )
        if sigma is None and not (grid is not None and risks is not None):
            raise InvalidParameterError(
                "`--sigma` must be given (or a --sigma-grid with one --emp-risk per sigma); got none."
            )
        bounds = split_names(bound)
        if stats_dir is not None:
            stats = WeightStats.load(stats_dir)
        else:
            stats = _measure(
                base,
                finetuned,
                out,
                adapter=adapter,
                adapter_init=adapter_init,
                base_norms=base_norms,
                chunk_mb=chunk_mb,
                device=device,
                allow_unpaired=allow_unpaired,
                progress=progress and not json_out,
                threads=threads,
            )
        kw = {
            "sigma_prior": sigma_prior,
            "per_tensor_scale": per_tensor_scale,
            "space": space,
            "rms_floor": rms_floor,
        }
        result: dict = {}
        text: list[str] = []
        bound_result = None
        if risks is not None:
            bound_result = weight_bound(
                stats,
                emp_risk=risks,
                n=n,
                delta=delta,
                sigma=sigma,
                sigma_grid=grid,
                bounds=bounds,
                **kw,
            )
        if sigma is not None:
            klr = gaussian_kl(stats, sigma=sigma, **kw)
        else:
            first = bounds[0] if bounds else "kl"
            klr = bound_result.kl[first]
        result.update(klr.to_dict())
        text.append(str(klr))
        if grid is not None:
            result["sigma_grid"] = [
                {"sigma": s, "kl": gaussian_kl(stats, sigma=s, **kw).kl} for s in grid
            ]
        if bound_result is not None:
            result["bound"] = bound_result.to_dict()
            text.append(str(bound_result))
        result["stats"] = {
            k: stats.meta.get(k) for k in ("base", "finetuned", "adapter", "device", "base_norms")
        }
        print_result(result, as_json=json_out, text="\n".join(text))
