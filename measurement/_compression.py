"""A compression (Occam) certificate: train in a random subspace around the base, quantise, code.

Following Lotfi et al. (2022, "PAC-Bayes compression bounds so tight that they can explain
generalization") and Lotfi et al. (2024, "Non-vacuous generalization bounds for large language
models"), the fine-tune is restricted to a D-dimensional random affine subspace around the base
weights (intrinsic-dimension training, Li et al. 2018),

.. math:: w = w_{base} + s \\odot (P z), \\qquad z \\in \\mathbb{R}^D,

where ``P`` is a fixed sparse random N x D matrix regenerated from a recorded seed (each row has
``nonzeros`` entries ±1/√nonzeros in uniformly drawn columns, so (Pz)_i has the scale of |z|),
and ``s`` holds, per tensor, the RMS of the base tensor (the global RMS for a tensor whose RMS is
0). ``z`` is trained with Adam on the completion-token NLL, then quantised to K levels: the
codebook is initialised by 1-D k-means on z and learnt jointly with z during a short
quantisation-aware fine-tune (straight-through: the forward pass uses c[a(z)], the nearest level
of each coordinate; the gradient reaches both z and c). The final codebook is rounded to float16.
With ``qat_select_every`` = k the quantised model is coded and certified every k steps of that
fine-tune (and before and after it) and the iterate with the lowest certificate is kept: the
bound below holds for every coded model at once, so choosing among them by their certificates
costs nothing. (On the calibrated cell d = 5, n = 4096 the quantised training error moves
between 0.04 and 0.26 from one 50-step iterate to the next.)

Code length L(h) of the quantised fine-tune h given the base (a prefix code fixed before seeing
the data, so Σ_h 2^{-L(h)} ≤ 1):

- hyperparameters: D, K and the projection seed from grids fixed in advance, a uniform code,
  log2(|D grid| · |K grid| · |seed grid|) bits;
- codebook: 16 bits per level (float16);
- level counts: log2 C(D + K − 1, K − 1) bits (a uniform code over the histograms of D items);
- coordinates: an arithmetic code under the empirical level frequencies p_k = n_k / D, whose
  length is at most the ideal length Σ_k n_k · (−log2 p_k) plus 2 bits; that bound is what is
  charged (the ideal length plus 2 bits), no bit-level coder is run.

Bound (Occam / prefix-code bound, Langford 2005, in its kl form): with probability ≥ 1 − δ over
the n i.i.d. examples S, for every h at once,

.. math:: R(h) \\le \\mathrm{kl}^{-1}\\Big(\\hat R_S(h), \\frac{L(h)\\ln 2 + \\ln(1/\\delta)}{n}\\Big),

with R̂_S the deterministic 0-1 training error of the quantised model: no Monte Carlo.

Loss certified. The 0-1 *sequence* error: 1 unless greedy decoding reproduces the whole reference
completion. It is computed in one teacher-forced pass (greedy decoding reproduces the reference
iff the argmax at every completion position is the reference token), and it upper-bounds the
final-answer error (an exactly reproduced completion has the right answer), so the certificate
holds for the answer error too.

Meaning: the certificate measures the bits needed to describe the fine-tune *given the base*,
the base-relative complexity of the fine-tune, not a move from a data-dependent prior.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from measurement._subspace_cache import load_subspace, save_subspace, subspace_key
from pacbound.exceptions import InvalidParameterError
from pacbound.support import Config, Interval, config_field

__all__ = [
    "COMPRESSION_LABEL",
    "CodeLength",
    "CompressionCertificate",
    "CompressionConfig",
    "TokenizedExamples",
    "code_length",
    "compression_certificate",
    "kmeans_1d",
    "occam_code_allowed",
    "sequence_errors",
]

COMPRESSION_LABEL = (
    "compression: bits to describe the fine-tune given the base "
    "(the paper's base-relative complexity)"
)
ARITHMETIC_OVERHEAD_BITS = 2.0
"""An arithmetic code is at most 2 bits longer than the ideal length Σ −log2 p(symbol)."""
CODEBOOK_BITS_PER_LEVEL = 16
"""Each level of the codebook is stored as a float16."""
LN2 = math.log(2.0)

_UNIT_OPEN = Interval(0.0, 1.0, "neither")
_POSITIVE = Interval(0.0, math.inf, "neither")


@dataclass(frozen=True)
class CompressionConfig(Config):
    """How :func:`compression_certificate` trains, quantises and codes the fine-tune.

    Attributes
    ----------
    dimension : int >= 1
        D, the dimension of the random subspace; must be on ``dimension_grid``.
    levels : int >= 2
        K, quantisation levels; must be on ``levels_grid``.
    seed : int >= 0
        Seed of the projection P; must be below ``n_seeds``.
    dimension_grid, levels_grid : tuple of int
        Grids fixed in advance; their sizes are paid in the code length.
    n_seeds : int >= 1
        Seeds 0 .. n_seeds − 1 are allowed; log2(n_seeds) bits are paid.
    nonzeros : int >= 1
        Non-zero entries per row of P (fixed in advance, not paid).
    steps, lr : subspace training: Adam steps on z and their learning rate.
    qat_steps, qat_lr : the quantisation-aware fine-tune of (z, codebook).
    qat_select_every : int >= 0
        With ``"ste"``: every this many quantisation-aware steps (and before the first and after
        the last) the quantised model is coded and certified, and the iterate with the lowest
        certificate is kept; 0 keeps the last. Free in the bound, which holds for every coded
        model at once.
    quantiser : {"ste", "incremental"}
        How it quantises (see :func:`_quantise`); the code and the bound do not depend on it.
    full_steps, full_lr : the reference full fine-tune (AdamW on every weight); 0 skips it.
    batch_size, eval_batch_size : training and evaluation batch sizes.
    train_seed : int >= 0
        Seed of the mini-batch order.
    delta : float in (0, 1)
        Confidence of the certificate.
    """

    dimension: int = config_field(128, help="D, dimension of the random subspace.", minimum=1)
    levels: int = config_field(3, help="K, number of quantisation levels.", minimum=2)
    seed: int = config_field(0, help="Seed of the random projection P.", minimum=0)
    dimension_grid: tuple[int, ...] = config_field(
        (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768),
        help="Grid of D fixed in advance (paid in bits).",
        minimum=1,
        sequence=True,
    )
    levels_grid: tuple[int, ...] = config_field(
        (3, 5, 7, 9, 11, 13, 15, 17),
        help="Grid of K fixed in advance (paid in bits).",
        minimum=2,
        sequence=True,
    )
    n_seeds: int = config_field(4, help="Projection seeds allowed: 0 .. n_seeds - 1.", minimum=1)
    nonzeros: int = config_field(4, help="Non-zero entries per row of P.", minimum=1)
    steps: int = config_field(300, help="Adam steps of the subspace training.", minimum=0)
    lr: float = config_field(
        1e-3, help="Learning rate of the subspace training.", interval=_POSITIVE
    )
    qat_steps: int = config_field(60, help="Steps of the quantisation-aware fine-tune.", minimum=0)
    qat_lr: float = config_field(
        1e-3, help="Learning rate of the quantisation-aware fine-tune.", interval=_POSITIVE
    )
    qat_select_every: int = config_field(
        0,
        help="Certify the quantised model every this many quantisation-aware steps and keep "
        "the lowest certificate (0: keep the last; 'ste' only).",
        minimum=0,
    )
    quantiser: str = config_field(
        "ste",
        help="Quantisation-aware fine-tune: 'ste' (straight-through) or 'incremental' (fix "
        "coordinates to their level in phases, train the rest).",
        choices=("ste", "incremental"),
    )
    full_steps: int = config_field(
        300, help="Steps of the reference full fine-tune (0 skips it).", minimum=0
    )
    full_lr: float = config_field(
        1e-3, help="Learning rate of the reference full fine-tune.", interval=_POSITIVE
    )
    batch_size: int = config_field(32, help="Training batch size.", minimum=1)
    eval_batch_size: int = config_field(256, help="Evaluation batch size.", minimum=1)
    train_seed: int = config_field(0, help="Seed of the mini-batch order.", minimum=0)
    delta: float = config_field(
        0.05, help="Confidence delta of the certificate.", interval=_UNIT_OPEN
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, value, grid in (
            ("dimension", self.dimension, self.dimension_grid),
            ("levels", self.levels, self.levels_grid),
        ):
            if value not in grid:
                raise InvalidParameterError(
                    f"`{name}` must be on its grid fixed in advance {list(grid)}; got {value}."
                )
        for name in ("dimension_grid", "levels_grid"):
            grid = getattr(self, name)
            if len(set(grid)) != len(grid):
                raise InvalidParameterError(f"`{name}` must not repeat a value; got {list(grid)}.")
        if self.qat_select_every and self.quantiser != "ste":
            raise InvalidParameterError(
                f"`qat_select_every` needs quantiser 'ste'; got qat_select_every = "
                f"{self.qat_select_every} with quantiser {self.quantiser!r}."
            )
        if self.seed >= self.n_seeds:
            raise InvalidParameterError(
                f"`seed` must be below n_seeds = {self.n_seeds}; got {self.seed}."
            )

    @property
    def hyperparameter_bits(self) -> float:
        """log2 of the number of (D, K, seed) choices: the uniform code of the choice."""
        return math.log2(len(self.dimension_grid) * len(self.levels_grid) * self.n_seeds)


@dataclass(frozen=True)
class TokenizedExamples:
    """Token ids of prompts (with any BOS) and completions (with EOS); the loss is on the latter."""

    prompts: tuple[tuple[int, ...], ...]
    completions: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        prompts = tuple(tuple(int(t) for t in p) for p in self.prompts)
        comps = tuple(tuple(int(t) for t in c) for c in self.completions)
        if len(prompts) != len(comps):
            raise InvalidParameterError(
                f"`prompts` and `completions` must have the same length; got {len(prompts)} "
                f"and {len(comps)}."
            )
        if not prompts:
            raise InvalidParameterError("`examples` must hold at least one example; got none.")
        if any(len(c) == 0 for c in comps) or any(len(p) == 0 for p in prompts):
            raise InvalidParameterError(
                "every prompt and completion must have at least one token; got an empty one."
            )
        object.__setattr__(self, "prompts", prompts)
        object.__setattr__(self, "completions", comps)

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass(frozen=True)
class CodeLength:
    """The description length of a quantised subspace fine-tune given the base, in bits.

    Attributes
    ----------
    coordinates_bits : float
        Arithmetic code of the D level indices under their empirical frequencies: the ideal
        length Σ_k n_k · (−log2(n_k/D)) plus ``overhead_bits``.
    counts_bits : float
        The level histogram: log2 C(D + K − 1, K − 1).
    codebook_bits : float
        The K levels as float16.
    hyperparameter_bits : float
        The choice of (D, K, seed) on grids fixed in advance.
    overhead_bits : float
        The arithmetic coder's overhead included in ``coordinates_bits`` (2 bits).
    """

    coordinates_bits: float
    counts_bits: float
    codebook_bits: float
    hyperparameter_bits: float
    overhead_bits: float = ARITHMETIC_OVERHEAD_BITS

    @property
    def bits(self) -> float:
        return (
            self.coordinates_bits + self.counts_bits + self.codebook_bits + self.hyperparameter_bits
        )

    @property
    def nats(self) -> float:
        return self.bits * LN2

    def parts_nats(self) -> dict[str, float]:
        """Each part in nats."""
        return {
            "coordinates": self.coordinates_bits * LN2,
            "counts": self.counts_bits * LN2,
            "codebook": self.codebook_bits * LN2,
            "hyperparameters": self.hyperparameter_bits * LN2,
        }


def code_length(
    assignments: Sequence[int] | np.ndarray, levels: int, *, hyperparameter_bits: float
) -> CodeLength:
    """The :class:`CodeLength` of D level indices in ``0 .. levels − 1``.

    .. math:: L = \\underbrace{\\textstyle\\sum_k n_k \\log_2\\frac{D}{n_k} + 2}_{\\text{arithmetic}}
              + \\log_2\\binom{D + K - 1}{K - 1} + 16K + L_{hyper}.
    """
    a = np.asarray(assignments)
    if a.ndim != 1 or a.size == 0:
        raise InvalidParameterError(
            f"`assignments` must be a non-empty 1-D array; got shape {a.shape}."
        )
    if not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= levels:
        raise InvalidParameterError(
            f"`assignments` must be integers in 0..{levels - 1}; got values in "
            f"[{a.min()}, {a.max()}]."
        )
    d = int(a.size)
    counts = np.bincount(a, minlength=levels).astype(np.float64)
    nz = counts[counts > 0]
    ideal = float(np.sum(nz * np.log2(d / nz)))
    log_binom = (math.lgamma(d + levels) - math.lgamma(levels) - math.lgamma(d + 1)) / LN2
    return CodeLength(
        coordinates_bits=ideal + ARITHMETIC_OVERHEAD_BITS,
        counts_bits=float(log_binom),
        codebook_bits=float(CODEBOOK_BITS_PER_LEVEL * levels),
        hyperparameter_bits=float(hyperparameter_bits),
    )


def occam_code_allowed(error: float, bar: float, n: int, delta: float) -> float:
    """The longest code (nats) whose Occam certificate at training error ``error`` is below ``bar``.

    The certificate kl⁻¹(error, (L + ln(1/δ))/n) is below ``bar`` exactly when

    .. math:: L < n\\,\\mathrm{kl}(\\text{error} \\,\\|\\, \\text{bar}) - \\ln(1/δ)

    (kl⁻¹ increases with its second argument). Returns that right-hand side, ``-inf`` when
    ``error >= bar`` (no code is short enough); a value ≤ 0 also means none.
    """
    from pacbound import kl_bernoulli

    if not (0.0 < bar <= 1.0) or not (0.0 <= error <= 1.0):
        raise InvalidParameterError(
            f"`error` and `bar` must be in [0, 1] and (0, 1]; got {error!r} and {bar!r}."
        )
    if not (0.0 < delta < 1.0):
        raise InvalidParameterError(f"`delta` must be in (0, 1); got {delta!r}.")
    if not error < bar:
        return -math.inf
    return n * float(kl_bernoulli(error, bar)) - math.log(1.0 / delta)


def kmeans_1d(values: np.ndarray, k: int, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """1-D k-means (Lloyd) initialised at the quantiles; returns (sorted centres, assignments)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    centres = np.quantile(x, (np.arange(k) + 0.5) / k)
    assign = np.zeros(x.size, dtype=np.int64)
    for _ in range(iterations):
        assign = np.abs(x[:, None] - centres[None, :]).argmin(axis=1)
        new = centres.copy()
        for j in range(k):
            members = x[assign == j]
            if members.size:
                new[j] = members.mean()
        if np.allclose(new, centres):
            break
        centres = new
    order = np.argsort(centres)
    centres = centres[order]
    assign = np.abs(x[:, None] - centres[None, :]).argmin(axis=1)
    return centres, assign


@dataclass(frozen=True)
class CompressionCertificate:
    """A compression (Occam) certificate of a quantised subspace fine-tune.

    Attributes
    ----------
    dimension, levels, seed : int
        D, K and the projection seed.
    code : CodeLength
        The description length, in parts.
    train_error : float
        0-1 sequence error of the quantised model on the n bound examples (its training set).
    n : int
    delta : float
    bound : float
        kl⁻¹(train_error, (L ln 2 + ln(1/δ)) / n).
    base_error, base_bound : float
        The trivial baseline: the base model (zero bits) on the same examples,
        kl⁻¹(base_error, ln(1/δ)/n) (a separate certificate at the same δ).
    full_error, subspace_error : float or None
        Training error of the full fine-tune (None when skipped) and of the continuous
        subspace fine-tune.
    heldout_errors : dict or None
        The same four models' errors on held-out examples, when given.
    seconds : dict
        Wall-clock time of each stage.
    qat_trace : tuple of (step, training error, certificate)
        The quantised iterates certified during the quantisation-aware fine-tune (empty unless
        ``qat_select_every``); the one kept, the lowest certificate, is ``qat_kept_step``.
    qat_kept_step : int or None
    label : str
    loss : str
    """

    dimension: int
    levels: int
    seed: int
    code: CodeLength
    train_error: float
    n: int
    delta: float
    bound: float
    base_error: float
    base_bound: float
    full_error: float | None
    subspace_error: float
    heldout_errors: dict[str, float | None] | None
    n_heldout: int
    codebook: tuple[float, ...]
    level_counts: tuple[int, ...]
    n_parameters: int
    seconds: dict[str, float]
    qat_trace: tuple[tuple[int, float, float], ...] = ()
    qat_kept_step: int | None = None
    label: str = COMPRESSION_LABEL
    loss: str = "0-1 sequence error (greedy decoding reproduces the reference completion)"

    @property
    def code_nats(self) -> float:
        return self.code.nats

    @property
    def accuracies(self) -> dict[str, float | None]:
        """Training accuracy of the three stages (and the base)."""
        return {
            "base": 1.0 - self.base_error,
            "full": None if self.full_error is None else 1.0 - self.full_error,
            "subspace": 1.0 - self.subspace_error,
            "quantised": 1.0 - self.train_error,
        }

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["code"] = {
            **asdict(self.code),
            "bits": self.code.bits,
            "nats": self.code.nats,
            "parts_nats": self.code.parts_nats(),
        }
        out["accuracies"] = self.accuracies
        return out

    def __str__(self) -> str:
        def pct(x: float | None) -> str:
            return "   -  " if x is None else f"{100 * x:5.1f}%"

        parts = self.code.parts_nats()
        acc = self.accuracies
        lines = [
            f"Compression certificate ({self.label})",
            f"  subspace D = {self.dimension} (seed {self.seed}) of {self.n_parameters} weights,"
            f" K = {self.levels} levels {[round(c, 4) for c in self.codebook]},"
            f" counts {list(self.level_counts)}",
            f"  code length {self.code.nats:.1f} nats ({self.code.bits:.0f} bits): coordinates"
            f" {parts['coordinates']:.1f} (incl. {self.code.overhead_bits:g}-bit arithmetic-code"
            f" overhead), counts {parts['counts']:.1f}, codebook {parts['codebook']:.1f},"
            f" hyperparameters {parts['hyperparameters']:.1f}",
            f"  loss: {self.loss}; n = {self.n} i.i.d. examples, delta = {self.delta:g}",
            f"  training accuracy: base {pct(acc['base'])}  full {pct(acc['full'])}  subspace"
            f" {pct(acc['subspace'])}  quantised {pct(acc['quantised'])}",
            f"  certificate (error) <= {self.bound:.4f}   [base, 0 bits: <= {self.base_bound:.4f}]",
        ]
        if self.heldout_errors is not None:
            h = self.heldout_errors
            lines.append(
                f"  held-out error (n = {self.n_heldout}): base {pct(h['base'])}  full "
                f"{pct(h['full'])}  subspace {pct(h['subspace'])}  quantised {pct(h['quantised'])}"
            )
        if self.qat_trace:
            lines.append(
                f"  quantisation-aware steps, training error / certificate (kept step "
                f"{self.qat_kept_step}): "
                + ", ".join(f"{s}: {100 * e:.1f}% / {b:.3f}" for s, e, b in self.qat_trace)
            )
        lines.append("  time: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items()))
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# torch part


def _as_examples(data: Any, name: str) -> TokenizedExamples:
    if isinstance(data, TokenizedExamples):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return TokenizedExamples(tuple(data[0]), tuple(data[1]))
    raise InvalidParameterError(
        f"`{name}` must be a TokenizedExamples or a (prompts, completions) pair of token-id "
        f"lists; got {type(data).__name__}."
    )


def _pad_batch(examples: TokenizedExamples, rows: Sequence[int], pad_id: int):
    import torch

    seqs = [examples.prompts[i] + examples.completions[i] for i in rows]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, i in enumerate(rows):
        p, c = examples.prompts[i], examples.completions[i]
        ids[r, : len(p) + len(c)] = torch.tensor(p + c)
        labels[r, len(p) : len(p) + len(c)] = torch.tensor(c)
        mask[r, : len(p) + len(c)] = 1
    return ids, mask, labels


def _logits(model: Any, params: dict[str, Any] | None, ids, mask):
    from torch.func import functional_call

    kwargs = {"input_ids": ids, "attention_mask": mask}
    if params is None:
        return model(**kwargs).logits
    return functional_call(model, params, args=(), kwargs=kwargs, strict=False).logits


def _nll(model: Any, params: dict[str, Any] | None, batch) -> Any:
    import torch

    ids, mask, labels = batch
    logits = _logits(model, params, ids, mask)[:, :-1]
    target = labels[:, 1:]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100
    )


def sequence_errors(
    model: Any,
    examples: TokenizedExamples | tuple,
    *,
    params: dict[str, Any] | None = None,
    pad_id: int = 0,
    batch_size: int = 256,
) -> np.ndarray:
    """Per example, 1.0 unless greedy decoding reproduces the whole reference completion.

    Computed in one teacher-forced pass: greedy decoding reproduces the completion iff, at every
    completion position, the argmax of the next-token logits is the reference token.
    ``params`` (name -> tensor) overrides the model's weights through ``functional_call``.
    """
    import torch

    examples = _as_examples(examples, "examples")
    out = np.ones(len(examples), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            rows = list(range(start, min(start + batch_size, len(examples))))
            ids, mask, labels = _pad_batch(examples, rows, pad_id)
            pred = _logits(model, params, ids, mask)[:, :-1].argmax(-1)
            target = labels[:, 1:]
            wrong = ((pred != target) & (target != -100)).any(dim=1)
            out[start : start + len(rows)] = wrong.double().numpy()
    return out


class _SparseProjection:
    """w(z) = w_base + s ⊙ (P z) with a sparse random P (``nonzeros`` ±1/√nnz per row)."""

    def __init__(self, model: Any, dimension: int, seed: int, nonzeros: int):
        import torch

        named = [(n, p) for n, p in model.named_parameters()]
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.base = [p.detach().clone().float() for _, p in named]
        sizes = [p.numel() for _, p in named]
        self.n_parameters = int(sum(sizes))
        flat = torch.cat([b.reshape(-1) for b in self.base])
        global_rms = float(flat.pow(2).mean().sqrt())
        scales = []
        for b in self.base:
            rms = float(b.pow(2).mean().sqrt())
            scales.append(torch.full((b.numel(),), rms if rms > 0 else global_rms))
        self.scale = torch.cat(scales)
        gen = torch.Generator().manual_seed(int(seed))
        self.cols = torch.randint(0, dimension, (self.n_parameters, nonzeros), generator=gen)
        signs = torch.randint(0, 2, (self.n_parameters, nonzeros), generator=gen) * 2 - 1
        self.values = signs.float() / math.sqrt(nonzeros)
        self.sizes = sizes
        self.dimension = dimension

    def params(self, z) -> dict[str, Any]:
        delta = (z[self.cols] * self.values).sum(dim=1) * self.scale
        out, start = {}, 0
        for name, shape, base, size in zip(
            self.names, self.shapes, self.base, self.sizes, strict=True
        ):
            out[name] = base + delta[start : start + size].view(shape)
            start += size
        return out


#: Fractions of the coordinates fixed to their level after each phase of ``"incremental"``.
INCREMENTAL_PHASES = (0.5, 0.75, 0.875, 1.0)


def _quantise(
    lm: Any,
    proj: _SparseProjection,
    z: Any,
    batches: list,
    cfg: CompressionConfig,
    certify: Any = None,
) -> tuple[Any, Any, tuple[tuple[int, float, float], ...], int | None]:
    """Quantise ``z`` to ``cfg.levels`` levels.

    Returns (float16-rounded codebook, assignments, trace, kept step). With
    ``cfg.qat_select_every`` and ``certify`` (a function of (codebook, assignments) returning
    (training error, certificate)), ``"ste"`` certifies the quantised model every that many steps,
    before the first and after the last, and returns the iterate with the lowest certificate (the
    later one on a tie); the trace lists (step, error, certificate). Choosing among coded models
    by their certificates costs nothing in the Occam bound, which holds for all of them at once.

    The codebook starts at the 1-D k-means centres of z. ``"ste"``: z and the codebook are
    trained together for ``qat_steps`` steps, the forward pass using c[a(z)] and the gradient
    passing straight through to z. ``"incremental"`` (Zhou et al. 2017, incremental network
    quantisation): in phases, the coordinates nearest their level are fixed to it (half, then
    3/4, 7/8, all of them) and the others, still continuous, are trained with the codebook for
    ``qat_steps / 4`` steps to absorb the error; the last phase trains the codebook alone.

    Measured on the calibrated synthetic cells d = 5, 6 at n = 4096 (D = 4096, K = 5, 600
    steps, from a subspace fine-tune with training error 0.000): straight-through keeps the
    quantised training error at 0.092 / 0.124, incremental loses far more (0.684 / 0.835);
    ``"ste"`` is the default.
    """
    import torch

    centres, _ = kmeans_1d(z.numpy(), cfg.levels)
    c = torch.tensor(centres, dtype=torch.float32, requires_grad=True)
    zq = z.clone().requires_grad_(True)

    def nearest(values: Any, book: Any) -> Any:
        return (values[:, None] - book[None, :]).abs().argmin(dim=1)

    every = cfg.qat_select_every if certify is not None else 0
    trace: list[tuple[int, float, float]] = []
    kept: list[Any] = []  # [certificate, step, codebook, assignments] of the best iterate so far

    def measure(step: int) -> None:
        with torch.no_grad():
            book = c.detach().half().float()
            a = nearest(zq.detach(), book)
            err, bound = (float(x) for x in certify(book, a))
        trace.append((step, err, bound))
        if not kept or bound <= kept[0]:
            kept[:] = [bound, step, book, a]

    def train(steps: int, offset: int, forward: Any, params: list) -> None:
        opt = torch.optim.Adam(params, lr=cfg.qat_lr)
        for step in range(steps):
            loss = _nll(lm, proj.params(forward()), batches[(offset + step) % len(batches)])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if every and ((step + 1) % every == 0 or step + 1 == steps):
                measure(step + 1)

    if cfg.quantiser == "ste":

        def ste() -> Any:
            with torch.no_grad():
                a = nearest(zq, c)
            return c[a] + (zq - zq.detach())

        if every:
            measure(0)
        train(cfg.qat_steps, 0, ste, [zq, c])
        if kept:
            return kept[2], kept[3], tuple(trace), kept[1]
    else:
        fixed = torch.zeros(z.numel(), dtype=torch.bool)
        a_fixed = torch.zeros(z.numel(), dtype=torch.long)
        per_phase = cfg.qat_steps // len(INCREMENTAL_PHASES)
        for i, fraction in enumerate(INCREMENTAL_PHASES):
            with torch.no_grad():
                near = nearest(zq, c)
                gap = (zq - c[near]).abs()
                gap[fixed] = -1.0  # already fixed: first in line, with their level kept
                newly = torch.zeros_like(fixed)
                newly[gap.argsort()[: round(fraction * z.numel())]] = True
                newly &= ~fixed
                a_fixed = torch.where(newly, near, a_fixed)
                fixed |= newly

            def mixed(a_fixed: Any = a_fixed, mask: Any = fixed.clone()) -> Any:
                return torch.where(mask, c[a_fixed], zq)

            train(per_phase, i * per_phase, mixed, [zq, c])
    with torch.no_grad():
        codebook = c.detach().half().float()
        # "incremental": every coordinate is fixed to a level index by the last phase
        a = nearest(zq.detach(), codebook) if cfg.quantiser == "ste" else a_fixed
    return codebook, a, (), None


def _batches(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    order: list[int] = []
    out = []
    for _ in range(steps):
        if len(order) < batch_size:
            order.extend(rng.permutation(n).tolist())
        out.append(order[:batch_size])
        order = order[batch_size:]
    return out


def _load_model(model: Any) -> Any:
    if isinstance(model, (str, Path)):
        import torch

        from measurement._lm import _load_folder

        return _load_folder(Path(model), torch.float32).eval()
    return model


def compression_certificate(
    model: Any,
    train: TokenizedExamples | tuple,
    config: CompressionConfig | None = None,
    *,
    heldout: TokenizedExamples | tuple | None = None,
    pad_id: int | None = None,
    log: Any = None,
    subspace_cache: str | Path | None = None,
) -> CompressionCertificate:
    """Train in a random subspace around the base, quantise, code, and certify (see module doc).

    Parameters
    ----------
    model : str, Path or torch.nn.Module
        The base causal LM (a Hugging Face folder, or a model in memory; it is not modified).
    train : TokenizedExamples or (prompts, completions)
        The n i.i.d. training examples, which are also the bound set.
    config : CompressionConfig
    heldout : TokenizedExamples or (prompts, completions), optional
        Fresh examples of the training distribution; their errors are reported beside the bound.
    pad_id : int, optional
        Padding token (default the model config's ``pad_token_id``, else 0).
    log : callable, optional
        Called with one progress line per stage.
    subspace_cache : str or Path, optional
        A folder where the trained subspace coordinates are saved, and reused by a later
        attempt with the same base, examples and subspace settings (see
        :mod:`measurement._subspace_cache`); the certificate does not depend on it.

    Returns
    -------
    CompressionCertificate
    """
    import copy

    import torch

    from pacbound import kl_inv_upper

    cfg = config or CompressionConfig()
    train = _as_examples(train, "train")
    held = None if heldout is None else _as_examples(heldout, "heldout")
    lm = _load_model(model)
    if pad_id is None:
        pad_id = getattr(lm.config, "pad_token_id", None) or 0
    say = log or (lambda _msg: None)
    n = len(train)
    seconds: dict[str, float] = {}

    def error(examples: TokenizedExamples | None, params: Any, module: Any) -> float | None:
        if examples is None:
            return None
        return float(
            sequence_errors(
                module, examples, params=params, pad_id=pad_id, batch_size=cfg.eval_batch_size
            ).mean()
        )

    def errors(params: dict[str, Any] | None, module: Any = lm) -> tuple[float, float | None]:
        return error(train, params, module), error(held, params, module)

    t0 = time.perf_counter()
    lm.eval()
    base_err, base_ho = errors(None)
    seconds["evaluate base"] = time.perf_counter() - t0
    say(f"base: train error {base_err:.4f}, held-out {base_ho}")

    batches = [
        _pad_batch(train, rows, pad_id)
        for rows in _batches(
            n, cfg.batch_size, max(cfg.steps, cfg.full_steps, cfg.qat_steps), cfg.train_seed
        )
    ]

    full_err = full_ho = None
    if cfg.full_steps:
        t0 = time.perf_counter()
        torch.manual_seed(cfg.train_seed)
        ft = copy.deepcopy(lm).train()
        opt = torch.optim.AdamW(ft.parameters(), lr=cfg.full_lr, weight_decay=0.0)
        for step in range(cfg.full_steps):
            loss = _nll(ft, None, batches[step])
            opt.zero_grad()
            loss.backward()
            opt.step()
        ft.eval()
        full_err, full_ho = errors(None, ft)
        del ft, opt
        seconds["full fine-tune"] = time.perf_counter() - t0
        say(f"full: train error {full_err:.4f}, held-out {full_ho} (last loss {loss.item():.4f})")

    t0 = time.perf_counter()
    # every parameter is replaced through functional_call (tied ones too), so the gradient
    # reaches z only and the base model's tensors are never modified
    proj = _SparseProjection(lm, cfg.dimension, cfg.seed, cfg.nonzeros)
    key = cached = None
    if subspace_cache is not None:
        key = subspace_key(cfg, train.prompts, train.completions, proj.base)
        cached = load_subspace(subspace_cache, key)
    if cached is not None:
        z, trained_in = cached
        say(f"subspace: z reused from {subspace_cache} (trained in {trained_in:.0f} s)")
    else:
        z = torch.zeros(cfg.dimension, requires_grad=True)
        opt = torch.optim.Adam([z], lr=cfg.lr)
        for step in range(cfg.steps):
            loss = _nll(lm, proj.params(z), batches[step])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if key is not None:
            save_subspace(subspace_cache, key, z, time.perf_counter() - t0)
    with torch.no_grad():
        sub_params = proj.params(z.detach())
    sub_err, sub_ho = errors(sub_params)
    seconds["subspace training" if cached is None else "subspace (cached)"] = (
        time.perf_counter() - t0
    )
    say(
        f"subspace: train error {sub_err:.4f}, held-out {sub_ho}, |z| {float(z.detach().norm()):.3f}"
    )

    t0 = time.perf_counter()

    def certify(book: Any, assign: Any) -> tuple[float, float]:
        err = error(train, proj.params(book[assign]), lm)
        nats = code_length(
            assign.numpy().astype(np.int64), cfg.levels, hyperparameter_bits=cfg.hyperparameter_bits
        ).nats
        return err, float(kl_inv_upper(err, (nats + math.log(1.0 / cfg.delta)) / n))

    codebook, a, qat_trace, qat_kept = _quantise(lm, proj, z.detach(), batches, cfg, certify)
    if qat_trace:
        say(
            f"quantisation-aware steps (error / certificate): kept step {qat_kept} of "
            + ", ".join(f"{s}: {e:.4f} / {b:.4f}" for s, e, b in qat_trace)
        )
    with torch.no_grad():
        q_params = proj.params(codebook[a])
    if qat_trace:  # the kept iterate's training error is already measured, on these weights
        q_err = next(e for step, e, _ in qat_trace if step == qat_kept)
        q_ho = error(held, q_params, lm)
    else:
        q_err, q_ho = errors(q_params)
    seconds["quantisation"] = time.perf_counter() - t0

    assign = a.numpy().astype(np.int64)
    code = code_length(assign, cfg.levels, hyperparameter_bits=cfg.hyperparameter_bits)
    budget = (code.nats + math.log(1.0 / cfg.delta)) / n
    bound = float(kl_inv_upper(q_err, budget))
    base_bound = float(kl_inv_upper(base_err, math.log(1.0 / cfg.delta) / n))
    say(
        f"quantised: train error {q_err:.4f}, held-out {q_ho}, code {code.nats:.1f} nats, "
        f"bound {bound:.4f}"
    )
    heldout_errors = None
    if held is not None:
        heldout_errors = {"base": base_ho, "full": full_ho, "subspace": sub_ho, "quantised": q_ho}
    return CompressionCertificate(
        dimension=cfg.dimension,
        levels=cfg.levels,
        seed=cfg.seed,
        code=code,
        train_error=q_err,
        n=n,
        delta=cfg.delta,
        bound=bound,
        base_error=base_err,
        base_bound=base_bound,
        full_error=full_err,
        subspace_error=sub_err,
        heldout_errors=heldout_errors,
        n_heldout=0 if held is None else len(held),
        codebook=tuple(float(x) for x in codebook.tolist()),
        level_counts=tuple(int(x) for x in np.bincount(assign, minlength=cfg.levels)),
        n_parameters=proj.n_parameters,
        seconds=seconds,
        qat_trace=qat_trace,
        qat_kept_step=qat_kept,
    )
