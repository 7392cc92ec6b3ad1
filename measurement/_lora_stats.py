"""Statistics rows for a LoRA adapter, in both posterior families (weight and adapter space).

*Weight space* (the paper's reading): Q is centred at w_base + ΔW over **all** the model's
weights, P at w_base. Rows: one per adapted module (kind ``lora``, squared norm from the
factors alone, or ``dora``, merged from the base rows of that module), ``modules_to_save``
tensors against their base, ``lora_bias`` deltas, and every untouched base tensor as a
``frozen`` row (numel from the header, delta exactly 0; never read). The frozen rows matter
whenever σ_q ≠ σ_p, since every weight then contributes (n/2)(ρ − 1 − ln ρ).

*Adapter space*: Q is centred at the trained adapter parameters θ = (A, B, biases, DoRA
magnitudes, modules_to_save tensors), P at their data-free initialisation θ₀: B₀ = 0, A₀ = 0
and bias₀ = 0 unless an initial adapter is given (``adapter_init``; :func:`measurement.certify`
gives the adapter's own initialisation by default, see :mod:`measurement._adapter_init`), the
DoRA magnitude at
‖W‖_row (its value at B₀ = 0), a modules_to_save tensor at its base value. Only these
parameters are perturbed, so the model stays base + low rank. The two families are kept in
separate tables and never summed together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from measurement._checkpoint import Checkpoint, TensorInfo
from measurement._checkpoint_reader import CheckpointReader
from measurement._lora import AdapterPlan
from measurement._lora_transforms import DoraTransform, LoraDeltaTransform, lora_sq_norm
from measurement._pairing import NameResolver, split_rows
from measurement._stream import JobStats, Segment, StreamJob
from measurement.exceptions import AdapterConfigError, NonFiniteWeightError

if TYPE_CHECKING:
    import torch

__all__ = ["AdapterWork", "build_adapter_work", "small_stats"]

_NAN = float("nan")


def small_stats(
    name: str, kind: str, theta: torch.Tensor, centre: torch.Tensor | None, meta: dict[str, Any]
) -> JobStats:
    """Statistics of a small in-memory tensor against its prior centre (None: 0), in float64."""
    t = theta.double().reshape(-1)
    c = None if centre is None else centre.double().reshape(-1)
    d = t if c is None else t - c
    return JobStats(
        name=name,
        kind=kind,
        numel=t.numel(),
        sq_delta=float(d.square().sum()),
        sq_base=0.0 if c is None else float(c.square().sum()),
        sq_finetuned=float(t.square().sum()),
        max_abs_delta=float(d.abs().max()) if d.numel() else 0.0,
        n_zero_delta=int((d == 0).sum()),
        meta=meta,
    )


def _unknown(name: str, kind: str, numel: int, sq_delta: float, meta: dict[str, Any]) -> JobStats:
    """A row whose delta norm is known from the factors but whose other sums were not read."""
    return JobStats(name, kind, numel, sq_delta, _NAN, _NAN, _NAN, -1, meta)


@dataclass
class AdapterWork:
    """What an adapter needs: streaming jobs, rows known without streaming, and a finaliser.

    Attributes
    ----------
    jobs : list of StreamJob
        Tensors to stream (DoRA modules, modules_to_save, saved embedding layers, and LoRA
        modules when base norms are requested).
    rows : list of JobStats
        Weight-space rows computed from the adapter alone (and frozen rows).
    overrides : dict
        Job key -> exact squared delta norm from the factors, replacing the streamed float32
        value for plain LoRA modules read with base norms.
    finish : callable
        ``finish(stats_by_job_key) -> list of JobStats``: the adapter-space rows, built once
        the streamed jobs are done (DoRA prior centres need the base row norms).
    notes : list of str
    """

    jobs: list[StreamJob] = field(default_factory=list)
    rows: list[JobStats] = field(default_factory=list)
    overrides: dict[str, float] = field(default_factory=dict)
    finish: Callable[[dict[str, JobStats]], list[JobStats]] = lambda stats: []
    notes: list[str] = field(default_factory=list)


def job_key(job: StreamJob) -> str:
    """Stable identity of a job (name, kind and element range)."""
    seg = job.finetuned or job.base
    start = 0 if seg is None else seg.start
    return f"{job.name}|{job.kind}|{start}"


def _meta(base: TensorInfo | None, ft: TensorInfo | None, **extra: Any) -> dict[str, Any]:
    return {
        "dtype_base": None if base is None else base.dtype_name,
        "dtype_finetuned": None if ft is None else ft.dtype_name,
        **extra,
    }


def _full_jobs(
    name: str,
    kind: str,
    ft: TensorInfo,
    base: TensorInfo,
    ft_reader: CheckpointReader,
    base_reader: CheckpointReader,
    note: str,
    where: str,
) -> list[StreamJob]:
    if ft.shape == base.shape:
        pairs = [(0, ft.numel, base, "full")]
    else:
        resized = split_rows(name, ft, base, note)
        if resized is None:
            raise AdapterConfigError(
                f"{where}: `{name}` has shape {list(ft.shape)} but the base tensor "
                f"`{base.name}` has shape {list(base.shape)}."
            )
        note = resized[0].note
        pairs = [(p.start, p.stop, p.base, p.kind) for p in resized]
    jobs = []
    for start, stop, b, k in pairs:
        jobs.append(
            StreamJob(
                name=name,
                kind=kind if k == "full" else "new_rows",
                numel=stop - start,
                finetuned=Segment(ft_reader, ft, start, stop),
                base=None if b is None else Segment(base_reader, b, start, stop),
                meta=_meta(b, ft, note=note),
            )
        )
    return jobs


def _merge_job(
    name: str,
    kind: str,
    base: TensorInfo,
    base_reader: CheckpointReader,
    row_elems: int,
    transform: LoraDeltaTransform,
    meta: dict[str, Any],
    what: str,
) -> StreamJob:
    """A job that streams the base tensor and merges the adapter into it row by row."""
    source = f"{what} of `{meta['module_path']}`"
    return StreamJob(
        name,
        kind,
        base.numel,
        None,
        Segment(base_reader, base, 0, base.numel),
        row_elems=row_elems,
        transform=transform,
        meta={**meta, "source": source},
    )


def build_adapter_work(
    plan: AdapterPlan,
    base: Checkpoint,
    base_reader: CheckpointReader,
    adapter_reader: CheckpointReader,
    *,
    base_norms: bool = False,
    init: tuple[AdapterPlan, CheckpointReader] | None = None,
) -> AdapterWork:
    """Plan the rows of both posterior families for ``plan`` on top of ``base``."""
    work = AdapterWork()
    resolver = NameResolver(base.tensors)
    covered: set[str] = set()
    where = f"Adapter `{plan.folder}`"
    adapter_rows: list[Callable[[dict[str, JobStats]], JobStats]] = []
    init_tensors = {} if init is None else dict(init[0].checkpoint.tensors)

    def centre(info: TensorInfo | None) -> torch.Tensor | None:
        if info is None or init is None:
            return None
        hit = init_tensors.get(info.name)
        if hit is None or hit.shape != info.shape:
            raise AdapterConfigError(
                f"Initial adapter `{init[0].folder}` must hold `{info.name}` with shape "
                f"{list(info.shape)}; got {None if hit is None else list(hit.shape)}."
            )
        return init[1].tensor(hit)

    def short(info: TensorInfo) -> str:
        return info.name.removeprefix("base_model.model.")

    def read(info: TensorInfo) -> torch.Tensor:
        import torch

        t = adapter_reader.tensor(info)
        if not bool(torch.isfinite(t).all()):
            raise NonFiniteWeightError(
                f"Tensor `{info.name}` in `{info.file}` (adapter) has "
                f"{int(torch.isnan(t).sum())} NaN and {int(torch.isinf(t).sum())} infinite "
                "values; weights must be finite."
            )
        return t

    for m in plan.modules:
        w = base.tensors[m.base_name]
        A = read(m.A)
        B = read(m.B)
        # a head tied to the embedding in the base becomes its own tensor once adapted
        row_name = m.base_name if m.base_how != "tied" else m.module + ".weight"
        if m.base_how != "tied":
            covered.add(m.base_name)
        meta = _meta(w, m.A, module_path=m.module, r=m.r, alpha=m.alpha, scaling=m.scaling)
        cols = w.shape[1] if len(w.shape) == 2 else w.numel
        if m.dora:
            mag = read(m.magnitude)
            transform = DoraTransform(A, B, mag, m.scaling, m.fan_in_fan_out, w.shape)
            row_elems = w.numel if m.fan_in_fan_out else cols  # Conv1D: the whole tensor at once
            work.jobs.append(
                _merge_job(
                    row_name, "dora", w, base_reader, row_elems, transform, meta, "DoRA merge"
                )
            )

            def mag_row(stats: dict[str, JobStats], m=m, mag=mag, transform=transform):
                c = centre(m.magnitude)
                if c is None:
                    c = transform.base_row_sq.sqrt().cpu()
                return small_stats(
                    short(m.magnitude), "dora_magnitude", mag, c, _meta(None, m.magnitude)
                )

            adapter_rows.append(mag_row)
        elif m.base_layer is not None:
            sq_norm = lora_sq_norm(A, B, m.scaling)
            for job in _full_jobs(
                row_name,
                "lora",
                m.base_layer,
                w,
                adapter_reader,
                base_reader,
                "LoRA over the base layer saved in the adapter",
                where,
            ):
                row0 = (job.finetuned.start // cols) if job.kind == "new_rows" else 0
                job.row_elems = cols
                job.transform = LoraDeltaTransform(
                    A, B, m.scaling, m.fan_in_fan_out, onto="finetuned", row_offset=row0
                )
                job.meta.update(
                    module_path=m.module,
                    r=m.r,
                    scaling=m.scaling,
                    lora_sq_norm=sq_norm,
                    source=f"LoRA of `{m.module}`",
                )
                work.jobs.append(job)
        elif base_norms:
            transform = LoraDeltaTransform(A, B, m.scaling, m.fan_in_fan_out)
            job = _merge_job(row_name, "lora", w, base_reader, cols, transform, meta, "LoRA")
            work.jobs.append(job)
            work.overrides[job_key(job)] = lora_sq_norm(A, B, m.scaling)
        else:
            work.rows.append(
                _unknown(row_name, "lora", w.numel, lora_sq_norm(A, B, m.scaling), meta)
            )
        for role, info, t in (("lora_A", m.A, A), ("lora_B", m.B, B)):
            adapter_rows.append(
                lambda stats, role=role, info=info, t=t: small_stats(
                    short(info), role, t, centre(info), _meta(None, info)
                )
            )
        if m.bias is not None:
            b = read(m.bias)
            delta_b = b.double() * m.scaling
            bias_name, how = resolver.resolve(m.module + ".bias", tied=False)
            if bias_name is None:
                work.notes.append(f"`{m.module}` has lora_bias but the base has no bias: centre 0")
                work.rows.append(
                    small_stats(m.module + ".bias", "lora", delta_b, None, _meta(None, m.bias))
                )
            else:
                covered.add(bias_name)
                b0 = base_reader.tensor(base.tensors[bias_name]).double()
                work.rows.append(
                    small_stats(
                        bias_name, "lora", b0 + delta_b, b0, _meta(base.tensors[bias_name], m.bias)
                    )
                )
            adapter_rows.append(
                lambda stats, info=m.bias, t=b: small_stats(
                    short(info), "lora_bias", t, centre(info), _meta(None, info)
                )
            )
    for info, base_name, how in plan.full:
        w = base.tensors[base_name]
        if how != "tied":
            covered.add(base_name)
        note = "" if how in ("exact", "canonical") else f"paired with base {how} `{base_name}`"
        jobs = _full_jobs(
            base_name if how != "tied" else short(info),
            "modules_to_save",
            info,
            w,
            adapter_reader,
            base_reader,
            note,
            where,
        )
        for job in jobs:
            job.meta["source"] = f"`{info.name}` of the adapter"
            work.jobs.append(job)
            adapter_rows.append(lambda stats, key=job_key(job): stats[key])
    for name, info in base.tensors.items():
        if info.is_float and name not in covered:
            work.rows.append(
                JobStats(
                    name,
                    "frozen",
                    info.numel,
                    0.0,
                    _NAN,
                    _NAN,
                    0.0,
                    info.numel,
                    _meta(info, info, note="not changed by the adapter; not read"),
                )
            )

    def finish(stats: dict[str, JobStats]) -> list[JobStats]:
        return [make(stats) for make in adapter_rows]

    work.finish = finish
    return work
