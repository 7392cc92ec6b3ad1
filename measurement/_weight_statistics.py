"""``weight_statistics``: plan from headers, pair, stream once, and return the table."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from measurement._checkpoint import Checkpoint, checkpoint_fingerprint, open_checkpoint
from measurement._checkpoint_reader import CheckpointReader
from measurement._jobs import Journal
from measurement._lora import AdapterPlan, plan_adapter
from measurement._lora_stats import AdapterWork, build_adapter_work, job_key
from measurement._pairing import Coverage, pair_checkpoints
from measurement._stats import WeightStats, make_table
from measurement._stream import (
    DEFAULT_CHUNK_BYTES,
    JobStats,
    Segment,
    StreamJob,
    StreamReport,
    run_jobs,
)
from measurement._stream_device import cpu_threads, make_stager, resolve_device
from measurement.exceptions import UnpairedTensorError
from pacbound.exceptions import InvalidParameterError
from pacbound.support import byte_progress, check_positive_int, library_versions

__all__ = ["weight_statistics"]

_JOURNAL_FLUSH_S = 2.0

PathLike = str | os.PathLike[str]


def _is_adapter_folder(path: PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "adapter_config.json").is_file()


def _describe(ckpt: Checkpoint) -> list[list[Any]]:
    """Identity of a checkpoint's weight files, for the resume journal: path and
    :func:`~measurement._checkpoint.checkpoint_fingerprint` (size, time, first/last MiB)."""
    return [[str(f.resolve()), checkpoint_fingerprint(f)] for f in ckpt.files]


def weight_statistics(
    base: PathLike,
    finetuned: PathLike | None = None,
    *,
    adapter: PathLike | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    device: str = "auto",
    allow_unpaired: bool = False,
    progress: bool = False,
    base_norms: bool = False,
    adapter_init: PathLike | None = None,
    journal: PathLike | None = None,
    threads: int | None = None,
) -> WeightStats:
    """Per-tensor statistics of a fine-tune (full or LoRA) against its base, in one pass.

    Let w_base and w_ft be the paired weights of one tensor. The table has one row per tensor
    pair with n = numel, S = Σ(w_ft − w_base)², Σw_base², Σw_ft², max|w_ft − w_base| and the
    count of exactly-zero deltas; every Gaussian KL for any σ is a closed form over it.

    Parameters
    ----------
    base : path-like
        Base model: a Hugging Face folder (one or many safetensors shards, or ``.bin``), a
        ``.safetensors`` file or a ``.bin`` file.
    finetuned : path-like, optional
        Fully fine-tuned model, same forms. A PEFT adapter folder here is taken as ``adapter``.
    adapter : path-like, optional
        A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) on top of
        ``base``. Exactly one of ``finetuned`` and ``adapter`` is required.
    chunk_bytes : int, default: 256 MiB
        Budget of one float32 working buffer; tensors are streamed in chunks of at most
        ``chunk_bytes / 4`` elements per side, so memory does not grow with the model.
    device : {"auto", "cpu", "cuda"}, default: ``"auto"``
        Compute device; ``auto`` uses CUDA when available.
    allow_unpaired : bool, default: False
        Compare only the tensors that pair instead of raising on the others (listed in
        ``meta["unpaired"]``).
    progress : bool, default: False
        Show a progress bar (bytes, GB/s) on stderr.
    base_norms : bool, default: False
        For adapters: also read the base tensors of the LoRA-targeted modules, to fill
        ``sq_base``, ``sq_finetuned``, ``max_abs_delta`` and ``n_zero_delta`` of their rows
        (needed for ``gaussian_kl(per_tensor_scale=True)``). Without it, LoRA rows come from
        the adapter alone.
    adapter_init : path-like, optional
        The adapter saved at initialisation (before training): the adapter-space prior is then
        centred at its A₀, B₀ instead of 0.
    journal : path-like, optional
        A resume journal: finished tensors are recorded there, and a rerun after a kill
        skips them. Removed when the pass completes.
    threads : int, optional
        torch intra-op CPU threads during the pass (restored afterwards); default: leave
        torch's setting. On a CPU shared with other jobs, ``threads=1`` can be much faster.

    Returns
    -------
    WeightStats

    Raises
    ------
    CheckpointError, QuantizedCheckpointError, UnpairedTensorError, NonFiniteWeightError,
    AdapterConfigError, InvalidParameterError, DeviceUnavailableError
    """
    chunk_bytes = check_positive_int(chunk_bytes, "chunk_bytes", minimum=256)
    if threads is not None:
        threads = check_positive_int(threads, "threads")
    dev = resolve_device(device)
    if adapter is None and finetuned is not None and _is_adapter_folder(finetuned):
        adapter, finetuned = finetuned, None
    if (finetuned is None) == (adapter is None):
        raise InvalidParameterError(
            "Exactly one of `finetuned` (a full fine-tune) and `adapter` (a PEFT adapter folder) "
            f"must be given; got finetuned={finetuned!r}, adapter={adapter!r}."
        )
    if adapter_init is not None and adapter is None:
        raise InvalidParameterError(
            f"`adapter_init` must be used with `adapter`; got adapter_init={adapter_init!r} "
            "for a full fine-tune."
        )
    pipelined = dev.type == "cuda"
    chunk_elems = max(64, chunk_bytes // (8 if pipelined else 4))
    base_ckpt = open_checkpoint(base, role="base")
    meta: dict[str, Any] = {
        "base": str(base),
        "finetuned": None if finetuned is None else str(finetuned),
        "adapter": None if adapter is None else str(adapter),
        "adapter_init": None if adapter_init is None else str(adapter_init),
        "device": str(dev),
        "chunk_bytes": chunk_bytes,
        "base_norms": bool(base_norms),
    }
    readers = [CheckpointReader(base_ckpt)]
    base_reader = readers[0]
    work = AdapterWork()
    try:
        if finetuned is not None:
            ft_ckpt = open_checkpoint(finetuned, role="fine-tune")
            readers.append(CheckpointReader(ft_ckpt))
            plan = pair_checkpoints(base_ckpt, ft_ckpt, allow_unpaired=allow_unpaired)
            work.jobs = [
                StreamJob(
                    name=p.name,
                    kind=p.kind,
                    numel=p.numel,
                    finetuned=Segment(readers[1], p.finetuned, p.start, p.stop),
                    base=None if p.base is None else Segment(base_reader, p.base, p.start, p.stop),
                    meta={
                        "dtype_base": None if p.base is None else p.base.dtype_name,
                        "dtype_finetuned": p.finetuned.dtype_name,
                    },
                )
                for p in plan.pairs
            ]
            meta.update(
                notes=plan.notes,
                skipped=plan.skipped,
                coverage=_coverage_meta(plan.coverage),
                unpaired={
                    "base_only": plan.base_only,
                    "finetuned_only": plan.finetuned_only,
                    "shape_mismatch": [[n, list(b), list(f)] for n, b, f in plan.shape_mismatch],
                },
            )
            fingerprint_sides = [_describe(base_ckpt), _describe(ft_ckpt)]
        else:
            aplan = plan_adapter(adapter, base_ckpt, allow_unpaired=allow_unpaired)
            adapter_coverage = _adapter_coverage(aplan, base)
            readers.append(CheckpointReader(aplan.checkpoint))
            init = None
            if adapter_init is not None:
                iplan = plan_adapter(adapter_init, base_ckpt, allow_unpaired=True)
                readers.append(CheckpointReader(iplan.checkpoint))
                init = (iplan, readers[-1])
            work = build_adapter_work(
                aplan, base_ckpt, base_reader, readers[1], base_norms=base_norms, init=init
            )
            meta.update(
                notes=work.notes,
                adapter_config=aplan.config.summary(),
                coverage=_coverage_meta(adapter_coverage),
                unpaired={"adapter_only": aplan.unresolved},
                families={
                    "weight": "Q = N(w_base + ΔW, σ_q²), P = N(w_base, σ_p²) over all weights",
                    "adapter": "Q = N(θ, σ_q²), P = N(θ0, σ_p²) over the adapter parameters "
                    + ("(θ0 from adapter_init)" if init else "(A0 = B0 = 0, DoRA m0 = ‖W‖_row)"),
                },
            )
            fingerprint_sides = [_describe(base_ckpt), _describe(aplan.checkpoint)]
        fingerprint = {
            "sides": fingerprint_sides,
            "base_norms": bool(base_norms),
            "allow_unpaired": bool(allow_unpaired),
            "adapter_init": meta["adapter_init"],
            "version": 1,
        }
        # kept for the rerun when the pass fails; removed once it is complete
        with Journal(journal, fingerprint) as jnl, cpu_threads(threads):
            stats = _stream(work, jnl, dev, chunk_elems, pipelined, progress, meta)
    finally:
        for r in readers:
            r.close()
    rows = work.rows + [_override(s, k, work.overrides) for k, s in stats.items()]
    adapter_rows = work.finish(stats) if adapter is not None else None
    meta["versions"] = {
        **library_versions(("torch", "safetensors", "peft", "transformers")),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return WeightStats(
        table=make_table(rows),
        adapter_table=None if adapter_rows is None else make_table(adapter_rows),
        meta=meta,
    )


def _coverage_meta(coverage: Coverage | None) -> dict[str, Any] | None:
    if coverage is None:
        return None
    return {**asdict(coverage), "share": coverage.share, "line": str(coverage)}


def _adapter_coverage(aplan: AdapterPlan, base: PathLike) -> Coverage:
    """Adapter parameters whose base tensor was found, against all of them.

    Refuses an adapter none of whose tensors resolve (a KL over nothing would be 0) and warns
    with the share compared when only some do.
    """
    from measurement._lora import _split_key

    unresolved = set(aplan.unresolved)
    infos = [t for t in aplan.checkpoint.tensors.values() if t.is_float]
    left = [t for t in infos if t.name in unresolved or _split_key(t.name)[0] in unresolved]
    skipped = [t for t in aplan.checkpoint.tensors.values() if not t.is_float]
    total = sum(t.numel for t in infos)
    coverage = Coverage(
        compared=total - sum(t.numel for t in left),
        total=total,
        unpaired_tensors=len(left),
        skipped_tensors=len(skipped),
        skipped_numel=sum(t.numel for t in skipped),
    )
    if not aplan.modules and not aplan.full:
        raise UnpairedTensorError(
            f"Adapter `{aplan.folder}` on base `{base}`: no adapter tensor pairs with a base "
            f"tensor, so there is nothing to compare ({coverage}); a KL over zero tensors "
            "would be 0. Check that the adapter was trained on this base model.",
            finetuned_only=list(aplan.unresolved),
        )
    if unresolved:
        shown = ", ".join(f"`{n}`" for n in aplan.unresolved[:10])
        more = f" and {len(unresolved) - 10} more" if len(unresolved) > 10 else ""
        warnings.warn(
            f"Only part of the adapter is compared (allow_unpaired): {coverage}. Left out "
            f"(no base tensor): {shown}{more}.",
            UserWarning,
            stacklevel=3,
        )
    return coverage


def _override(stats: JobStats, key: str, overrides: dict[str, float]) -> JobStats:
    if key not in overrides:
        return stats
    from dataclasses import replace

    return replace(stats, sq_delta=overrides[key])


def _stream(
    work: AdapterWork,
    jnl: Journal,
    dev: Any,
    chunk_elems: int,
    pipelined: bool,
    progress: bool,
    meta: dict[str, Any],
) -> dict[str, JobStats]:
    """Run the jobs not already in the journal; return stats by job key, in job order."""
    done = {}
    for payload in jnl.done.values():
        for rec in payload:
            done[rec["key"]] = JobStats(**rec["stats"])
    resumable = {job_key(j) for j in work.jobs if j.transform is None or not j.transform.stateful}
    done = {k: v for k, v in done.items() if k in resumable}
    todo = [j for j in work.jobs if job_key(j) not in done]
    stager = make_stager(dev, chunk_elems, pipelined=pipelined)
    report = StreamReport(device=str(dev), chunk_elems=chunk_elems)
    total = sum(j.nbytes for j in todo)
    fresh: dict[str, JobStats] = {}
    pending: list[dict[str, Any]] = []
    last_flush = time.monotonic()
    with byte_progress("weight statistics", total, enabled=progress) as advance:
        for job, stats in zip(
            todo,
            run_jobs(todo, stager=stager, chunk_elems=chunk_elems, advance=advance, report=report),
            strict=True,
        ):
            fresh[job_key(job)] = stats
            if job_key(job) in resumable:
                pending.append({"key": job_key(job), "stats": _jsonable_stats(stats)})
            if time.monotonic() - last_flush > _JOURNAL_FLUSH_S:
                jnl.record(f"batch-{len(jnl.done)}", pending)
                pending, last_flush = [], time.monotonic()
    if pending:
        jnl.record(f"batch-{len(jnl.done)}", pending)
    import torch

    meta.update(
        threads=torch.get_num_threads(),
        bytes_read=report.bytes_read,
        seconds=report.seconds,
        gb_per_s=report.gb_per_s,
        resumed_tensors=len(done),
    )
    return {job_key(j): fresh.get(job_key(j)) or done[job_key(j)] for j in work.jobs}


def _jsonable_stats(s: JobStats) -> dict[str, Any]:
    return {
        "name": s.name,
        "kind": s.kind,
        "numel": s.numel,
        "sq_delta": s.sq_delta,
        "sq_base": s.sq_base,
        "sq_finetuned": s.sq_finetuned,
        "max_abs_delta": s.max_abs_delta,
        "n_zero_delta": s.n_zero_delta,
        "meta": {k: v for k, v in s.meta.items() if k in ("dtype_base", "dtype_finetuned")},
    }
