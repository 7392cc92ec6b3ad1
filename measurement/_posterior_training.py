"""A Gaussian posterior trained against a PAC-Bayes bound, and its Monte-Carlo certificate.

Posterior Q = N(μ, diag(s²)) over the perturbed parameters (all the model's weights, or a LoRA
adapter's own parameters in adapter space, see :func:`measurement._perturb.select_parameters`),
prior P = N(w_P, λ_l² I) with λ_l = λ · RMS_l(w_P) (``prior_scale="rms"``; a tensor whose RMS is
0 takes the RMS over all of w_P) or λ_l = λ (``"absolute"``), and λ from a grid of size G fixed
in advance. Then

.. math:: \\mathrm{KL}(Q\\|P) = \\tfrac12 \\sum_i \\Big[\\frac{s_i^2 + (\\mu_i - w_{P,i})^2}
          {\\lambda_{l(i)}^2} - 1 + \\ln\\frac{\\lambda_{l(i)}^2}{s_i^2}\\Big].

**Training** (Dziugaite & Roy 2017; Pérez-Ortiz et al. 2021, "Tighter risk certificates for
neural networks"): μ starts at the given weights (a fine-tune, or a learnt prior's), log s at
ln λ_l, and (μ, log s, log λ) minimise a differentiable bound by Adam, with one posterior sample
per step (reparameterisation θ = μ + s ⊙ ε, evaluated with :func:`torch.func.functional_call`)
and the bounded training loss ℓ = −ln max(p, p_min) / ln(1/p_min) averaged over completion
tokens. With A = (KL + ln(2√n/δ) + ln G) / (2n):

- ``"f_quad"``: (√(r̂ + A) + √A)²;  ``"f_classic"``: r̂ + √A;
- ``"kl"``: kl⁻¹(r̂, 2A), differentiated by :func:`pacbound.torch_kl_inv_upper`.

After training λ is rounded (in log) to the nearest grid value, the posterior scales s are
multiplied by the same factor (Q may depend on the data; only P may not, so s/λ_l keeps the
value training tuned), and the KL is recomputed there in closed form; the certificate pays
ln G for having chosen λ after seeing the data.

**Certificate** (the standard two-step one, :func:`measurement._certify.certificate_bounds`):
the risks of m posterior samples on the n bound examples, q_MC, then
R̂(Q) ≤ kl⁻¹(q_MC, ln(1/δ′)/m) with probability ≥ 1 − δ′, then the kl and Catoni bounds with
the KL and the grid's union cost at confidence 1 − δ. The certified loss is the clipped NLL or
the 0-1 sequence error: 1 unless every completion token is the argmax of the model given the
reference prefix, i.e. unless greedy decoding reproduces the reference completion exactly
(an upper bound on the exact-answer error, which it equals when the completion is the answer).

**Prior provenance.** A prior centred at the base (data-free) keeps the paper's meaning: the KL
is the fine-tune's complexity relative to the pretrained model. A learnt prior (a fine-tune on a
random part of the training set disjoint from the bound set; Dziugaite et al. 2021) makes the
bound tight, but its KL measures the move from w_P, not from the base. Every result says which.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from measurement._perturb import select_parameters
from measurement._prior_split import check_disjoint
from pacbound.exceptions import InvalidParameterError
from pacbound.support import Config, Interval, atomic_path, config_field, write_json

__all__ = [
    "DEFAULT_PRIOR_SCALE_GRID",
    "PRIOR_LABELS",
    "PosteriorCertificate",
    "PosteriorConfig",
    "TokenData",
    "TrainedPosterior",
    "base_model_certificate",
    "certify_posterior",
    "check_disjoint",
    "evaluate_model",
    "load_prior_centre",
    "mc_sample_risks",
    "train_posterior",
]

#: λ grid fixed in advance (relative to each tensor's RMS by default): 13 values, 1e-4 .. 1e-1.
DEFAULT_PRIOR_SCALE_GRID = tuple(float(s) for s in np.geomspace(1e-4, 1e-1, 13))

PRIOR_LABELS = {
    "learnt": "learnt prior: KL from w_prior (tight; not the paper's base-relative complexity)",
    "base": "base-centred Gaussian (the paper's complexity relative to the pretrained model)",
    "base-model": "base model itself as the posterior (KL = 0, zero bits; the trivial baseline)",
}
"""What each certificate measures (prior provenance), printed beside every value."""

LOSS_TEXT = {
    "zero_one": "0-1 sequence error (greedy decoding does not reproduce the reference "
    "completion exactly; >= the exact-answer error)",
    "nll_clipped": "clipped NLL -ln max(p, p_min)/ln(1/p_min), mean over completion tokens",
}

_POSITIVE = Interval(0.0, math.inf, "neither")
_UNIT_OPEN = Interval(0.0, 1.0, "neither")


@dataclass(frozen=True)
class PosteriorConfig(Config):
    """How the posterior is trained and certified.

    Attributes
    ----------
    objective : {"f_quad", "f_classic", "kl"}
        Differentiable bound minimised in training.
    prior_scale : {"rms", "absolute"}
        λ_l = λ · RMS_l(w_P), or λ_l = λ.
    prior_scale_grid : tuple of float > 0
        Grid of λ fixed in advance (charged ln G).
    prior_scale_init : float > 0
        Initial λ (and initial posterior scale s = λ_l).
    per_tensor_sigma : bool
        One posterior scale per tensor (cheap) instead of one per parameter.
    train_mean : bool
        Train μ (else only the scales).
    steps, batch_size : int >= 1
    lr : float > 0
        Adam learning rate of log s and log λ. Adam moves every coordinate by about ``lr`` per
        step whatever its gradient, and each coordinate's move is paid in the KL: keep it
        small with many parameters (or use ``per_tensor_sigma``).
    lr_mean : float > 0
        Adam learning rate of μ in units of the initial prior scale λ₀ s_l (μ = μ₀ + λ₀ s_l z).
    p_min : float in (0, 1)
    delta, delta_mc : float in (0, 1)
        PAC-Bayes and Monte-Carlo confidence budgets (δ + δ′ < 1).
    loss : {"zero_one", "nll_clipped"}
        The certified loss.
    mc_samples : int >= 1
        m, posterior samples of the certificate.
    eval_batch_size : int >= 1
    samples_per_call : int >= 1
        Posterior samples evaluated together by :func:`torch.func.vmap` (1: one at a time),
        with eager attention while vmapped (torch has no batching rule for the fused SDPA
        kernels). Same risks either way. On a 2-core CPU batching is slower than the loop
        (0.43x / 0.80x, ``benchmarks/bench_posterior.py``): even one forward of all m x n rows
        at once, with no per-call overhead, is slower than m calls of n rows, so the default is
        1; the batched path is for GPUs, where the loop is launch-bound.
    seed : int >= 0
        Seed of the training samples and batches; the certificate's samples use seed + 1.
    """

    objective: str = config_field(
        "f_quad", choices=("f_quad", "f_classic", "kl"), help="Bound minimised in training."
    )
    prior_scale: str = config_field(
        "rms", choices=("rms", "absolute"), help="Prior scale per tensor: lambda x RMS, or lambda."
    )
    prior_scale_grid: tuple[float, ...] = config_field(
        DEFAULT_PRIOR_SCALE_GRID, interval=_POSITIVE, sequence=True, help="Lambda grid (charged)."
    )
    prior_scale_init: float = config_field(0.01, interval=_POSITIVE, help="Initial lambda.")
    per_tensor_sigma: bool = config_field(False, boolean=True, help="One scale per tensor.")
    train_mean: bool = config_field(True, boolean=True, help="Train the posterior mean.")
    steps: int = config_field(300, minimum=1, help="Optimiser steps.")
    batch_size: int = config_field(32, minimum=1, help="Examples per step.")
    lr: float = config_field(1e-3, interval=_POSITIVE, help="Adam lr of the log-scales.")
    lr_mean: float = config_field(
        1e-3, interval=_POSITIVE, help="Adam lr of the mean (units of lambda_0 x scale)."
    )
    p_min: float = config_field(1e-4, interval=_UNIT_OPEN, help="Probability floor.")
    delta: float = config_field(0.025, interval=_UNIT_OPEN, help="PAC-Bayes confidence budget.")
    delta_mc: float = config_field(0.01, interval=_UNIT_OPEN, help="Monte-Carlo budget.")
    loss: str = config_field(
        "zero_one", choices=("zero_one", "nll_clipped"), help="Certified loss."
    )
    mc_samples: int = config_field(100, minimum=1, help="Posterior samples m.")
    eval_batch_size: int = config_field(256, minimum=1, help="Examples per evaluation batch.")
    samples_per_call: int = config_field(1, minimum=1, help="Samples per vmap call.")
    seed: int = config_field(0, minimum=0, help="Seed.")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "prior_scale_grid", tuple(sorted(set(self.prior_scale_grid))))
        if self.delta + self.delta_mc >= 1:
            raise InvalidParameterError(
                f"`delta` + `delta_mc` must be < 1; got {self.delta} + {self.delta_mc}."
            )


@dataclass(frozen=True, eq=False)
class TokenData:
    """Pre-tokenized examples, right-padded: ``labels`` is −100 outside completion tokens.

    Attributes
    ----------
    input_ids, attention_mask, labels : torch.Tensor of shape (N, L)
    keys : tuple of str
        One identifier per row (e.g. a digest of prompt and completion), for disjointness checks.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    keys: tuple[str, ...] = ()

    @classmethod
    def from_ids(
        cls,
        prompts: Sequence[Sequence[int]],
        completions: Sequence[Sequence[int]],
        *,
        pad_id: int,
        keys: Sequence[str] | None = None,
    ) -> TokenData:
        """Concatenate prompt and completion ids per row; loss on the completion only."""
        if len(prompts) != len(completions) or not prompts:
            raise InvalidParameterError(
                f"`prompts` and `completions` must be non-empty and of equal length; got "
                f"{len(prompts)} and {len(completions)}."
            )
        width = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True))
        n = len(prompts)
        ids = torch.full((n, width), int(pad_id), dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        labels = torch.full((n, width), -100, dtype=torch.long)
        for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
            if not c:
                raise InvalidParameterError(f"`completions` row {i} is empty; need >= 1 token.")
            row = [*p, *c]
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
            labels[i, len(p) : len(row)] = torch.tensor(list(c))
        if keys is None:
            keys = tuple(
                f"{tuple(p)}|{tuple(c)}" for p, c in zip(prompts, completions, strict=True)
            )
        return cls(ids, mask, labels, tuple(keys))

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def subset(self, index: Sequence[int] | np.ndarray) -> TokenData:
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64))
        keys = tuple(self.keys[i] for i in idx.tolist()) if self.keys else ()
        return TokenData(self.input_ids[idx], self.attention_mask[idx], self.labels[idx], keys)


def _losses(logits: torch.Tensor, labels: torch.Tensor, p_min: float):
    """Per example: (clipped NLL in [0, 1], 0-1 sequence error, summed NLL, token count)."""
    logits = logits[..., :-1, :].float()
    target = labels[..., 1:]
    mask = target != -100
    safe = target.clamp_min(0)
    logp = torch.log_softmax(logits, dim=-1)
    tok = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    floor = math.log(p_min)
    clipped = (-tok.clamp_min(floor) / -floor) * mask
    count = mask.sum(-1)
    bounded = clipped.sum(-1) / count.clamp_min(1)
    wrong = ((logits.argmax(-1) != safe) & mask).any(-1).to(bounded.dtype)
    nll = (-tok * mask).sum(-1)
    return bounded, wrong, nll, count


def _forward(model: Any, params: Mapping[str, torch.Tensor], data: TokenData, idx: Any):
    ids = data.input_ids[idx]
    mask = data.attention_mask[idx]
    device = next(iter(params.values())).device
    out = torch.func.functional_call(
        model,
        dict(params),
        (ids.to(device),),
        {"attention_mask": mask.to(device), "use_cache": False},
        strict=False,
    )
    return out.logits, data.labels[idx].to(device)


def evaluate_model(
    model: Any, data: TokenData, *, p_min: float = 1e-4, batch_size: int = 256
) -> dict[str, Any]:
    """Deterministic losses of ``model`` as it is: per-example clipped NLL and 0-1 error."""
    bounded, wrong, nll, count = [], [], 0.0, 0
    params = dict(model.named_parameters())
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            idx = slice(start, start + batch_size)
            logits, labels = _forward(model, params, data, idx)
            b, w, s, c = _losses(logits, labels, p_min)
            bounded.append(b.double().cpu())
            wrong.append(w.double().cpu())
            nll += float(s.sum())
            count += int(c.sum())
    return {
        "nll_clipped": torch.cat(bounded).numpy(),
        "zero_one": torch.cat(wrong).numpy(),
        "token_nll": nll / max(count, 1),
    }


def _prior_scales(
    centre: Mapping[str, torch.Tensor], names: Sequence[str], mode: str
) -> dict[str, float]:
    """s_l with λ_l = λ · s_l: the RMS of each prior-centre tensor (global RMS where it is 0)."""
    if mode == "absolute":
        return {n: 1.0 for n in names}
    sq = {n: float(centre[n].double().pow(2).sum()) for n in names}
    total = sum(centre[n].numel() for n in names)
    glob = math.sqrt(sum(sq.values()) / total)
    if glob == 0:
        raise InvalidParameterError(
            "`prior_scale` 'rms' needs a prior centre with nonzero weights; every perturbed "
            "tensor is 0 (use prior_scale='absolute')."
        )
    out = {}
    for n in names:
        rms = math.sqrt(sq[n] / centre[n].numel())
        out[n] = rms if rms > 0 else glob
    return out


def _gaussian_kl(mu, log_s, centre, scales, log_lam, names) -> torch.Tensor:
    """KL(N(μ, s²) ‖ N(w_P, (λ s_l)²)) in float64, summed over tensors (module docstring)."""
    total = torch.zeros((), dtype=torch.float64)
    for n in names:
        m = mu[n].double()
        ls = log_s[n].double().expand_as(m)
        log_var_p = 2.0 * (log_lam.double() + math.log(scales[n]))
        var_p = torch.exp(log_var_p)
        diff = (m - centre[n].double().to(m.device)).pow(2)
        term = (torch.exp(2.0 * ls) + diff) / var_p - 1.0 + log_var_p - 2.0 * ls
        total = total + 0.5 * term.sum().cpu()
    return total


def _bound_objective(risk, kl, n: int, delta: float, grid: int, objective: str):
    from pacbound import torch_kl_inv_upper

    a = (kl + math.log(2.0 * math.sqrt(n) / delta) + math.log(grid)) / (2.0 * n)
    r = risk.double().cpu().clamp(0.0, 1.0)
    if objective == "f_quad":
        return (torch.sqrt(r + a) + torch.sqrt(a)) ** 2
    if objective == "f_classic":
        return r + torch.sqrt(a)
    return torch_kl_inv_upper(r, 2.0 * a)


@dataclass(frozen=True, eq=False)
class TrainedPosterior:
    """A trained Gaussian posterior Q = N(μ, diag(s²)) and its prior P = N(w_P, λ_l² I).

    Attributes
    ----------
    names : tuple of str
        Perturbed parameters (sorted), each with ``mean[name]`` and ``log_sigma[name]`` (a
        scalar per tensor with ``per_tensor_sigma``).
    prior_centre : dict of str to Tensor
        w_P (kept to recompute the KL; not saved, it is the prior checkpoint or the base).
    prior_scales : dict of str to float
        s_l with λ_l = λ s_l.
    lam, lam_trained : float
        λ on the grid (used for the KL) and the continuous value training reached.
    grid : tuple of float
    kl : float
        KL(Q‖P) at the grid λ (nats).
    provenance : {"learnt", "base"}
    space : {"weight", "adapter"}
    n_bound : int
        n used in the training objective.
    curve : tuple of dict
        Per logged step: step, objective, risk (clipped NLL of the sample), kl, lam.
    config : PosteriorConfig
    seconds : float
    """

    names: tuple[str, ...]
    mean: dict[str, torch.Tensor]
    log_sigma: dict[str, torch.Tensor]
    prior_centre: dict[str, torch.Tensor]
    prior_scales: dict[str, float]
    lam: float
    lam_trained: float
    grid: tuple[float, ...]
    kl: float
    provenance: str
    space: str
    n_bound: int
    curve: tuple[dict[str, float], ...]
    config: PosteriorConfig
    seconds: float

    @property
    def n_parameters(self) -> int:
        return int(sum(self.mean[n].numel() for n in self.names))

    def __str__(self) -> str:
        sig = np.concatenate(
            [self.log_sigma[n].exp().double().flatten().numpy() for n in self.names]
        )
        last = self.curve[-1] if self.curve else {}
        return (
            f"trained posterior ({PRIOR_LABELS[self.provenance]}), {self.space} space, "
            f"{self.n_parameters:,} parameters\n"
            f"  KL = {self.kl:.1f} nats at lambda = {self.lam:.4g} (grid of {len(self.grid)}, "
            f"trained {self.lam_trained:.4g}; prior scale {self.config.prior_scale})\n"
            f"  posterior sigma: median {np.median(sig):.3g}, range {sig.min():.3g}..{sig.max():.3g}"
            f"\n  objective {self.config.objective} {last.get('objective', math.nan):.4f} after "
            f"{self.config.steps} steps ({self.seconds:.1f} s)"
        )

    def sample(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One draw θ = μ + s ⊙ ε."""
        out = {}
        for n in self.names:
            mu = self.mean[n]
            eps = torch.randn(mu.shape, generator=generator, dtype=torch.float32)
            out[n] = (mu.float() + self.log_sigma[n].exp().float() * eps).to(mu.dtype)
        return out

    def save(self, folder: str | Path) -> Path:
        """``posterior.safetensors`` (mean.<name>, log_sigma.<name>) and ``posterior.json``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"mean.{n}": self.mean[n].contiguous() for n in self.names}
        tensors.update({f"log_sigma.{n}": self.log_sigma[n].contiguous() for n in self.names})
        with atomic_path(folder / "posterior.safetensors") as tmp:
            save_file(tensors, str(tmp))
        write_json(folder / "posterior.json", self.to_dict())
        return folder

    def to_dict(self) -> dict[str, Any]:
        return {
            "provenance": self.provenance,
            "label": PRIOR_LABELS[self.provenance],
            "space": self.space,
            "n_parameters": self.n_parameters,
            "kl": self.kl,
            "lam": self.lam,
            "lam_trained": self.lam_trained,
            "grid": list(self.grid),
            "prior_scales": self.prior_scales,
            "n_bound": self.n_bound,
            "curve": list(self.curve),
            "config": self.config.to_dict(),
            "seconds": self.seconds,
        }


def train_posterior(
    model: Any,
    data: TokenData,
    *,
    prior_centre: Mapping[str, torch.Tensor],
    n_bound: int,
    provenance: str,
    config: PosteriorConfig | None = None,
    space: str = "weight",
    log_every: int = 10,
) -> TrainedPosterior:
    """Train Q = N(μ, diag(s²)) from μ = the model's current weights against the bound.

    Parameters
    ----------
    model
        A causal LM; its perturbed parameters are the initial mean (left unchanged).
    data : TokenData
        Training examples (all of them: the bound is a training objective here).
    prior_centre : mapping of str to Tensor
        w_P for every perturbed parameter (same names and shapes).
    n_bound : int
        n of the bound set the certificate will use (the objective's n).
    provenance : {"learnt", "base"}
        Where w_P comes from (see :data:`PRIOR_LABELS`).
    config : PosteriorConfig, optional
    space : {"weight", "adapter"}
    """
    cfg = config or PosteriorConfig()
    if provenance not in ("learnt", "base"):
        raise InvalidParameterError(f"`provenance` must be 'learnt' or 'base'; got {provenance!r}.")
    if n_bound < 1:
        raise InvalidParameterError(f"`n_bound` must be >= 1; got {n_bound!r}.")
    named = select_parameters(model, space)
    names = tuple(n for n, _ in named)
    _check_centre(prior_centre, dict(named))
    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in grad_flags:
        p.requires_grad_(False)  # gradients flow to (μ, log s, log λ) only
    device = named[0][1].device
    centre = {n: prior_centre[n].detach().to(device=device, dtype=torch.float32) for n in names}
    scales = _prior_scales(centre, names, cfg.prior_scale)
    log_lam = torch.tensor(math.log(cfg.prior_scale_init), dtype=torch.float64, requires_grad=True)
    # μ = μ₀ + (λ₀ s_l) z with z trained from 0: Adam's steps are then a fraction of the
    # prior's scale in every tensor, whatever its RMS
    mu0 = {n: p.detach().float().clone() for n, p in named}
    z = {n: torch.zeros_like(mu0[n], requires_grad=cfg.train_mean) for n in names}
    unit = {n: cfg.prior_scale_init * scales[n] for n in names}
    log_s = {}
    for n, p in named:
        shape = (1,) * p.dim() if cfg.per_tensor_sigma else tuple(p.shape)
        init = math.log(cfg.prior_scale_init * scales[n])
        log_s[n] = torch.full(shape, init, dtype=torch.float32, device=device, requires_grad=True)
    groups = [{"params": [*log_s.values(), log_lam], "lr": cfg.lr}]
    if cfg.train_mean:
        groups.append({"params": list(z.values()), "lr": cfg.lr_mean})
    opt = torch.optim.Adam(groups)
    gen = torch.Generator().manual_seed(cfg.seed)
    grid = cfg.prior_scale_grid
    curve = []
    was_training = model.training
    model.eval()  # no dropout: the posterior's noise is the only randomness
    t0 = time.perf_counter()
    try:
        for step in range(cfg.steps):
            idx = torch.randint(len(data), (min(cfg.batch_size, len(data)),), generator=gen)
            mu = {n: mu0[n] + unit[n] * z[n] for n in names}
            theta = {}
            for n in names:
                eps = torch.randn(mu[n].shape, generator=gen).to(device)
                theta[n] = mu[n] + log_s[n].exp() * eps
            logits, labels = _forward(model, theta, data, idx)
            bounded, _, _, _ = _losses(logits, labels, cfg.p_min)
            risk = bounded.mean()
            kl = _gaussian_kl(mu, log_s, centre, scales, log_lam, names)
            obj = _bound_objective(risk, kl, n_bound, cfg.delta, len(grid), cfg.objective)
            opt.zero_grad(set_to_none=True)
            obj.backward()
            opt.step()
            if step % log_every == 0 or step == cfg.steps - 1:
                curve.append(
                    {
                        "step": step,
                        "objective": float(obj.detach()),
                        "risk": float(risk.detach()),
                        "kl": float(kl.detach()),
                        "lam": float(log_lam.detach().exp()),
                    }
                )
    finally:
        model.train(was_training)
        for p, flag in grad_flags:
            p.requires_grad_(flag)
    lam_trained = float(log_lam.detach().exp())
    lam = min(grid, key=lambda g: abs(math.log(g) - math.log(lam_trained)))
    with torch.no_grad():
        mu = {n: mu0[n] + unit[n] * z[n] for n in names}
        # Q may depend on the data (only P may not): rescale s with λ so that s/λ_l, which
        # training tuned, is kept at the grid value instead of being charged for the rounding
        shift = math.log(lam) - math.log(lam_trained)
        for n in names:
            log_s[n] += shift
        kl_grid = float(
            _gaussian_kl(
                mu, log_s, centre, scales, torch.tensor(math.log(lam), dtype=torch.float64), names
            )
        )
        mean = {n: mu[n].detach().to(dict(named)[n].dtype).clone() for n in names}
        log_sigma = {n: log_s[n].detach().clone() for n in names}
    return TrainedPosterior(
        names,
        mean,
        log_sigma,
        {n: centre[n] for n in names},
        scales,
        float(lam),
        lam_trained,
        tuple(grid),
        max(kl_grid, 0.0),
        provenance,
        space,
        int(n_bound),
        tuple(curve),
        cfg,
        time.perf_counter() - t0,
    )


def _check_centre(centre: Mapping[str, torch.Tensor], params: Mapping[str, Any]) -> None:
    missing = [n for n in params if n not in centre]
    if missing:
        raise InvalidParameterError(
            f"`prior_centre` must hold every perturbed parameter (same architecture); "
            f"{len(missing)} missing, e.g. `{missing[0]}`."
        )
    for n, p in params.items():
        if tuple(centre[n].shape) != tuple(p.shape):
            raise InvalidParameterError(
                f"`prior_centre` must match the model's architecture; `{n}` has shape "
                f"{tuple(centre[n].shape)}, the model {tuple(p.shape)}."
            )


@contextlib.contextmanager
def _batchable_attention(model: Any) -> Iterator[None]:
    """Eager attention while samples are vmapped: torch has no batching rule for the fused SDPA
    kernels (``aten::_scaled_dot_product_flash_attention_for_cpu``), so under
    :func:`torch.func.vmap` they fall back to a per-sample loop; the eager path (matmul,
    softmax) batches. The same attention, computed without fusion; restored on exit."""
    config = getattr(model, "config", None)
    before = getattr(config, "_attn_implementation", None)
    if before in (None, "eager"):
        yield
        return
    config._attn_implementation = "eager"
    try:
        yield
    finally:
        config._attn_implementation = before


def mc_sample_risks(
    model: Any,
    posterior: TrainedPosterior,
    data: TokenData,
    *,
    m: int,
    loss: str,
    seed: int,
    p_min: float = 1e-4,
    batch_size: int = 256,
    samples_per_call: int = 1,
) -> np.ndarray:
    """R̂_S(θ_j) for m posterior samples θ_j (seeded), one at a time or ``samples_per_call``
    at once through :func:`torch.func.vmap` over the stacked sampled parameters."""
    if loss not in LOSS_TEXT:
        raise InvalidParameterError(f"`loss` must be one of {sorted(LOSS_TEXT)}; got {loss!r}.")
    gen = torch.Generator().manual_seed(int(seed))
    device = next(model.parameters()).device
    risks: list[float] = []
    pick = 0 if loss == "nll_clipped" else 1
    batched = _batchable_attention(model) if samples_per_call > 1 else contextlib.nullcontext()
    with torch.inference_mode(), batched:
        done = 0
        while done < m:
            k = min(samples_per_call, m - done)
            draws = [posterior.sample(gen) for _ in range(k)]
            totals = torch.zeros(k, dtype=torch.float64)
            for start in range(0, len(data), batch_size):
                idx = slice(start, start + batch_size)
                if k == 1:
                    theta = {n: t.to(device) for n, t in draws[0].items()}
                    logits, labels = _forward(model, theta, data, idx)
                    totals += _losses(logits, labels, p_min)[pick].double().sum().cpu()
                else:
                    stacked = {
                        n: torch.stack([d[n] for d in draws]).to(device) for n in posterior.names
                    }
                    labels = data.labels[idx].to(device)

                    def one(params, _idx=idx, _labels=labels):
                        logits, _ = _forward(model, params, data, _idx)
                        return _losses(logits, _labels, p_min)[pick].sum()

                    totals += torch.func.vmap(one)(stacked).double().cpu()
            risks.extend((totals / len(data)).tolist())
            done += k
    return np.asarray(risks, dtype=np.float64)


@dataclass(frozen=True)
class PosteriorCertificate:
    """The certificate of a trained posterior on a bound set (module docstring).

    Attributes
    ----------
    value : float
        min of the kl and Catoni bounds (each at 1 − δ − δ′; both together at 1 − 2δ − δ′).
    kl_bound, catoni_bound : float
    q_mc, q_upper : float
        Mean risk of the m samples and kl⁻¹(q_MC, ln(1/δ′)/m).
    m, n : int
    kl : float
    union : dict
        Grid sizes charged.
    loss, label, loss_text : str
        The certified loss and what the certificate measures (prior provenance).
    assumptions : tuple of str
    seconds : float
    """

    value: float
    kl_bound: float
    catoni_bound: float
    q_mc: float
    q_upper: float
    m: int
    n: int
    kl: float
    delta: float
    delta_mc: float
    union: dict[str, int]
    loss: str
    provenance: str
    label: str
    loss_text: str
    sample_risks: tuple[float, ...] = field(repr=False, default=())
    assumptions: tuple[str, ...] = ()
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [
            f"certificate {self.value:.4f} [{self.label}]",
            f"  loss: {self.loss_text}",
            f"  kl bound {self.kl_bound:.4f}, Catoni {self.catoni_bound:.4f}; Gibbs risk "
            f"q_MC = {self.q_mc:.4f} over m = {self.m} samples -> {self.q_upper:.4f} "
            f"(Monte-Carlo slack {self.q_upper - self.q_mc:.4f}, delta' = {self.delta_mc:g})",
            f"  KL = {self.kl:.1f} nats, n = {self.n}, KL/n = {self.kl / self.n:.3f}, "
            f"delta = {self.delta:g}, union {self.union}",
        ]
        lines += [f"  assumes: {a}" for a in self.assumptions]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["sample_risks"] = list(self.sample_risks)
        out["assumptions"] = list(self.assumptions)
        return out


def certify_posterior(
    model: Any,
    posterior: TrainedPosterior,
    bound_data: TokenData,
    *,
    prior_keys: Sequence[str] | None = None,
) -> PosteriorCertificate:
    """Certify ``posterior`` on ``bound_data`` (n = its size): Monte Carlo, then kl / Catoni.

    Parameters
    ----------
    prior_keys : sequence of str, optional
        Rows the learnt prior was trained on; required for ``provenance="learnt"`` and checked
        to be disjoint from ``bound_data.keys``.
    """
    from measurement._certify import certificate_bounds

    cfg = posterior.config
    if posterior.provenance == "learnt":
        if prior_keys is None:
            raise InvalidParameterError(
                "`prior_keys` (the rows the learnt prior was trained on) must be given to "
                "certify a learnt-prior posterior; got None."
            )
        check_disjoint(prior_keys, bound_data.keys)
    t0 = time.perf_counter()
    risks = mc_sample_risks(
        model,
        posterior,
        bound_data,
        m=cfg.mc_samples,
        loss=cfg.loss,
        seed=cfg.seed + 1,
        p_min=cfg.p_min,
        batch_size=cfg.eval_batch_size,
        samples_per_call=cfg.samples_per_call,
    )
    q_mc = float(risks.mean())
    n = len(bound_data)
    union = {"prior scale grid": len(posterior.grid)}
    q_upper, bounds = certificate_bounds(
        q_mc, cfg.mc_samples, posterior.kl, n, delta=cfg.delta, delta_mc=cfg.delta_mc, union=union
    )
    kl_b, cat_b = float(bounds["kl"].value), float(bounds["catoni"].value)
    assumptions = (
        "the bound set is an i.i.d. sample of the task distribution",
        f"loss in [0, 1]: {LOSS_TEXT[cfg.loss]}",
        f"prior: {PRIOR_LABELS[posterior.provenance]}; fixed before the bound set was seen",
        f"union: ln {len(posterior.grid)} for lambda chosen on a grid fixed in advance; "
        f"Catoni's C grid",
        f"delta split: PAC-Bayes {cfg.delta:g} (each bound), Monte Carlo {cfg.delta_mc:g}",
    )
    return PosteriorCertificate(
        min(kl_b, cat_b),
        kl_b,
        cat_b,
        q_mc,
        float(q_upper),
        cfg.mc_samples,
        n,
        posterior.kl,
        cfg.delta,
        cfg.delta_mc,
        union,
        cfg.loss,
        posterior.provenance,
        PRIOR_LABELS[posterior.provenance],
        LOSS_TEXT[cfg.loss],
        tuple(float(r) for r in risks),
        assumptions,
        time.perf_counter() - t0,
    )


def base_model_certificate(
    model: Any,
    data: TokenData,
    *,
    loss: str = "zero_one",
    p_min: float = 1e-4,
    delta: float = 0.025,
    batch_size: int = 256,
) -> dict[str, Any]:
    """The trivial baseline: the base model itself (KL = 0, no Monte Carlo) on ``data``.

    :func:`measurement._certify.base_certificate`: the exact binomial tail for the 0-1 loss,
    kl⁻¹(r̂, ln(1/δ)/n) for the clipped NLL; returned as a dict with its ``label``.
    """
    from measurement._certify import base_certificate
    from measurement._gibbs import Evaluation

    if loss not in LOSS_TEXT:
        raise InvalidParameterError(f"`loss` must be one of {sorted(LOSS_TEXT)}; got {loss!r}.")
    ev = evaluate_model(model, data, p_min=p_min, batch_size=batch_size)
    cert = base_certificate(Evaluation(ev[loss], ev["token_nll"]), loss, delta)
    return {**cert.to_dict(), "label": PRIOR_LABELS["base-model"], "loss_text": LOSS_TEXT[loss]}


def load_prior_centre(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint folder's ``model.safetensors`` (the learnt prior's weights)."""
    from safetensors.torch import load_file

    path = Path(path)
    file = path / "model.safetensors" if path.is_dir() else path
    if not file.is_file():
        raise InvalidParameterError(
            f"`prior` must be a model folder with model.safetensors or a .safetensors file; "
            f"got {str(path)!r}."
        )
    return load_file(str(file))
