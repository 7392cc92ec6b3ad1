"""A PAC-Bayes certificate for a real fine-tune: KL from its weights, Gibbs risk by Monte Carlo.

Prior P = N(w_base, σ_p²), posterior Q = N(w_ft, σ²) (one σ, or σ times each tensor's RMS;
in weight space over all the model's weights, or in adapter space over a LoRA adapter's own
parameters). On the n examples S, with m posterior samples and a loss in [0, 1]:

1. **KL(Q‖P)** in closed form from the weight statistics (:func:`measurement.gaussian_kl`).
2. **Monte-Carlo step** (confidence 1 − δ′): the per-sample risks R̂_S(θ_j) are i.i.d. in
   [0, 1] with mean R̂_S(Q), so with probability ≥ 1 − δ′

   .. math:: \\hat R_S(Q) \\le \\bar q = \\mathrm{kl}^{-1}\\big(q_{MC},\\ \\ln(1/\\delta')/m\\big).

3. **PAC-Bayes step** (confidence 1 − δ, simultaneously for every σ of a grid of size G fixed
   in advance, which costs ln G: ``union={"sigma grid": G}``):

   - kl bound (Langford–Seeger–Maurer): R(Q) ≤ kl⁻¹(q̄, (KL + ln(2√n/δ) + ln G)/n);
   - Catoni, over a grid of k values of C fixed in advance:
     R(Q) ≤ min_C [1 − exp(−C q̄ − (KL + ln(k/δ) + ln G)/n)] / (1 − e^{−C}).

Each bound then holds with probability ≥ 1 − δ − δ′; both together (and so their minimum)
with probability ≥ 1 − 2δ − δ′. The σ search (when σ is not given) uses its own posterior
samples, drawn from a seed stream independent of the certificate's, so the Monte-Carlo step
is not biased by the choice of σ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measurement._answers import AnswerChecker
from measurement._certify_config import CertifyConfig
from measurement._datasets import ExampleSet, as_example_set
from measurement._generate import seed_for
from measurement._gibbs import (
    DEFAULT_SIGMA_GRID,
    GibbsRisk,
    PosteriorSampler,
    RiskEvaluator,
    SigmaSearch,
    gibbs_risk,
    sigma_search,
)
from pacbound.exceptions import InvalidParameterError
from pacbound.support import to_jsonable

__all__ = ["Certificate", "CertifyConfig", "certificate_bounds", "certify"]


def certificate_bounds(
    q_mc: float,
    m: int,
    kl: float,
    n: int,
    *,
    delta: float,
    delta_mc: float,
    union: dict[str, int] | None = None,
    catoni_grid: Sequence[float] | None = None,
) -> tuple[float, dict[str, Any]]:
    """The Monte-Carlo kl-inverse step, then the kl and Catoni bounds (see module docstring).

    Both go through :func:`pacbound.mc_certificate`, which charges δ′ to the Monte-Carlo step
    and δ (divided by every grid size) to the PAC-Bayes step.

    Parameters
    ----------
    q_mc : float in [0, 1]
        Mean risk of the m posterior samples.
    m : int
        Number of posterior samples.
    kl : float
        KL(Q‖P) >= 0.
    n : int
        Number of examples.
    delta, delta_mc : float in (0, 1)
        Confidence budgets of the PAC-Bayes and Monte-Carlo steps.
    union : dict, optional
        Grids fixed in advance, ``{label: size}`` (e.g. ``{"sigma grid": 17}``).
    catoni_grid : sequence of float, optional
        Values of C fixed in advance (default: ``pacbound.DEFAULT_CATONI_GRID``).

    Returns
    -------
    (q_upper, {"kl": BoundResult, "catoni": BoundResult})
        ``q_upper`` = kl⁻¹(q_MC, ln(1/δ′)/m), the certified Gibbs empirical risk.
    """
    import pacbound

    common = dict(m=m, delta_mc=delta_mc, union=union or None)
    bounds = {
        "kl": pacbound.mc_certificate(q_mc, kl, n, delta, bound="kl", **common),
        "catoni": pacbound.mc_certificate(
            q_mc, kl, n, delta, bound="catoni", grid=catoni_grid, **common
        ),
    }
    q_upper = float(bounds["kl"].params["mc_risk_bound"])
    return q_upper, bounds


@dataclass(frozen=True)
class Certificate:
    """A certified bound on the risk of the Gaussian posterior around a fine-tune.

    Attributes
    ----------
    n : int
        Examples in the bound set.
    delta, delta_mc : float
        Confidence budgets of the PAC-Bayes and the Monte-Carlo steps.
    sigma : float
        Posterior σ (relative to each tensor's RMS with ``per_tensor_scale``).
    space : {"weight", "adapter"}
    kl : float
        KL(Q‖P).
    gibbs : GibbsRisk
        The Monte-Carlo estimate (q_MC and the per-sample risks).
    q_upper : float
        kl⁻¹(q_MC, ln(1/δ′)/m): the Gibbs empirical risk, certified at 1 − δ′.
    bounds : dict
        ``"kl"`` and ``"catoni"`` -> :class:`pacbound.BoundResult`.
    union : dict
        Grids paid for, ``{label: size}``.
    search : SigmaSearch or None
        How σ was chosen (None when it was given).
    """

    n: int
    delta: float
    delta_mc: float
    sigma: float
    sigma_prior: float | None
    space: str
    per_tensor_scale: bool
    kl: float
    gibbs: GibbsRisk
    q_upper: float
    bounds: dict[str, Any]
    union: dict[str, int]
    catoni_grid: tuple[float, ...]
    search: SigmaSearch | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def confidence_each(self) -> float:
        """Probability with which each bound holds: 1 − δ − δ′."""
        return 1.0 - self.delta - self.delta_mc

    @property
    def confidence_all(self) -> float:
        """Probability with which all bounds (and their minimum) hold: 1 − kδ − δ′."""
        return 1.0 - len(self.bounds) * self.delta - self.delta_mc

    @property
    def best(self) -> float:
        """The smallest of the bounds (holds with :attr:`confidence_all`)."""
        return min(float(b.value) for b in self.bounds.values())

    def __str__(self) -> str:
        g = self.gibbs
        scale = " x RMS per tensor" if self.per_tensor_scale else ""
        unions = ", ".join(f"{k} {v} (ln {v} = {math.log(v):.3f})" for k, v in self.union.items())
        rows = [
            ("posterior", f"N(w_ft, sigma^2), {self.space} space, {g.n_parameters:,} weights"),
            (
                "sigma",
                f"{self.sigma:.4g}{scale}"
                + ("" if self.sigma_prior is None else f" (prior {self.sigma_prior:.4g})"),
            ),
            ("KL(Q||P)", f"{self.kl:.6g} nats"),
            ("n (examples)", f"{self.n}"),
            ("loss", g.loss + (f" (p_min {g.p_min:g})" if g.p_min is not None else "")),
            ("unperturbed risk", f"{g.unperturbed_risk:.6f}"),
            ("Gibbs risk q_MC", f"{g.mean:.6f} over m = {g.n_samples} samples"),
            ("MC kl-inverse (delta')", f"{self.q_upper:.6f}  (delta' = {self.delta_mc:g})"),
            ("union bounds", unions or "none (sigma fixed in advance)"),
        ]
        for name, b in self.bounds.items():
            rows.append(
                (f"{name} bound (delta)", f"{float(b.value):.6f}  (delta = {self.delta:g})")
            )
        rows.append(
            (
                "confidence",
                f"each bound >= {self.confidence_each:.4f}; "
                f"all (and their minimum {self.best:.6f}) >= {self.confidence_all:.4f}",
            )
        )
        width = max(len(k) for k, _ in rows)
        lines = ["PAC-Bayes certificate"] + [f"  {k:<{width}}  {v}" for k, v in rows]
        if self.search is not None:
            lines.append(
                f"  sigma chosen by search: {len(self.search.evaluated)} grid points "
                f"tried, target +{self.search.target_increase:g} {self.search.criterion}"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "delta": self.delta,
            "delta_mc": self.delta_mc,
            "sigma": self.sigma,
            "sigma_prior": self.sigma_prior,
            "space": self.space,
            "per_tensor_scale": self.per_tensor_scale,
            "kl": self.kl,
            "gibbs": self.gibbs.to_dict(),
            "q_upper": self.q_upper,
            "bounds": {k: to_jsonable(b) for k, b in self.bounds.items()},
            "best": self.best,
            "union": dict(self.union),
            "catoni_grid": list(self.catoni_grid),
            "confidence_each": self.confidence_each,
            "confidence_all": self.confidence_all,
            "search": None if self.search is None else self.search.to_dict(),
            "notes": list(self.notes),
        }


def certify(
    base: str | Path,
    finetuned: str | Path | None = None,
    data: ExampleSet | str | Path | None = None,
    config: CertifyConfig | None = None,
    *,
    adapter: str | Path | None = None,
    checker: AnswerChecker | None = None,
    stats: Any = None,
    columns: Any = None,
    journal: str | Path | None = None,
    progress: bool = False,
    **options: Any,
) -> Certificate:
    """Certify the risk of the Gaussian posterior around a fine-tune (see module docstring).

    Parameters
    ----------
    base : path
        The base model folder: the prior's centre.
    finetuned : path, optional
        The fully fine-tuned model folder, or a PEFT adapter folder (recognised by its
        adapter_config.json; or give ``adapter``).
    data : ExampleSet or path
        The bound set: examples drawn i.i.d. from the task distribution (typically the
        fine-tune's training set); the first ``config.n`` rows are used.
    config : CertifyConfig, optional
        Budgets, posterior, σ search and Monte-Carlo settings (see :class:`CertifyConfig` for
        each one and its allowed values).
    adapter : path, optional
        A PEFT LoRA adapter on ``base`` (instead of ``finetuned``).
    checker : AnswerChecker, optional
        Answer checker of the ``"zero_one"`` loss (default: the final-answer regex,
        ``#### N`` or "answer is N").
    stats : WeightStats, optional
        Precomputed :func:`measurement.weight_statistics` of (base, fine-tune).
    columns : mapping or str, optional
        Column mapping of ``data`` (e.g. ``"prompt=question,completion=solution"``).
    journal : path, optional
        Journal of finished Monte-Carlo samples (resume after a kill).
    progress : bool
    **options
        :class:`CertifyConfig` fields, as a shorthand (``certify(b, f, d, n=100)``); given with
        ``config`` they replace its fields.
    """
    from measurement._answers import DEFAULT_ANSWER_PATTERN
    from measurement._lm import load_causal_lm
    from measurement._weight_kl import gaussian_kl
    from measurement._weight_statistics import weight_statistics

    if config is None:
        config = CertifyConfig(**options)
    elif options:
        config = config.replace(**options)
    cfg = config
    if (
        adapter is None
        and finetuned is not None
        and (Path(finetuned) / "adapter_config.json").is_file()
    ):
        finetuned, adapter = None, finetuned
    if (finetuned is None) == (adapter is None):
        raise InvalidParameterError(
            "Exactly one of `finetuned` (a full fine-tune) and `adapter` (a LoRA adapter) must be "
            f"given; got finetuned={finetuned!r}, adapter={adapter!r}."
        )
    if cfg.space == "adapter" and adapter is None:
        raise InvalidParameterError(
            "`space` must be 'weight' for a full fine-tune (adapter space perturbs a LoRA "
            "adapter's own parameters); got 'adapter'."
        )
    if data is None:
        raise InvalidParameterError("`data` must be the bound set (a dataset); got None.")
    if cfg.loss == "zero_one" and checker is None:
        checker = AnswerChecker(pattern=DEFAULT_ANSWER_PATTERN)
    sigma, space, per_tensor_scale = cfg.sigma, cfg.space, cfg.per_tensor_scale
    grid = cfg.sigma_grid if cfg.sigma_grid is not None or sigma is not None else DEFAULT_SIGMA_GRID
    if stats is None:
        stats = weight_statistics(base, finetuned, adapter=adapter, progress=progress)
    if adapter is None:
        model, tok = load_causal_lm(finetuned, dtype=cfg.dtype, device=cfg.device)
        source = finetuned
    else:
        model, tok = load_causal_lm(
            base,
            adapter=adapter,
            dtype=cfg.dtype,
            device=cfg.device,
            merge_adapter=space == "weight",
        )
        source = adapter if space == "adapter" else None
    examples = as_example_set(data, columns=columns, tokenizer=tok)
    n = len(examples) if cfg.n is None else cfg.n
    if n > len(examples):
        raise InvalidParameterError(
            f"`n` must be at most the number of examples in {examples.source} "
            f"({len(examples)}); got {n}."
        )
    examples = examples.subset(range(n))
    kwargs = dict(loss=cfg.loss, p_min=cfg.p_min, checker=checker, batch_size=cfg.batch_size)
    evaluator = RiskEvaluator(model, tok, examples, **kwargs)
    sampler = PosteriorSampler(
        model, space=space, per_tensor_scale=per_tensor_scale, stats=stats, source=source
    )
    try:
        search = None
        if sigma is None:
            subset = examples.subset(range(min(n, cfg.search_examples)))
            search = sigma_search(
                sampler,
                RiskEvaluator(model, tok, subset, **kwargs),
                grid=grid,
                target_increase=cfg.target_increase,
                n_samples=cfg.search_samples,
                seed=cfg.seed,
                progress=progress,
            )
            sigma = search.chosen
        kl = gaussian_kl(
            stats,
            sigma=sigma,
            sigma_prior=cfg.sigma_prior,
            per_tensor_scale=per_tensor_scale,
            space=space,
        ).kl
        gibbs = gibbs_risk(
            sampler,
            evaluator,
            sigma=sigma,
            n_samples=cfg.mc_samples,
            seed=seed_for(cfg.seed, 2),
            journal=journal,
            progress=progress,
        )
    finally:
        sampler.restorer.close()
    union = {"sigma grid": len(grid)} if grid is not None and len(grid) > 1 else {}
    q_upper, bounds = certificate_bounds(
        gibbs.mean,
        gibbs.n_samples,
        kl,
        n,
        delta=cfg.delta,
        delta_mc=cfg.delta_mc,
        union=union or None,
        catoni_grid=cfg.catoni_grid,
    )
    notes = [] if search is None else list(search.notes)
    if min(float(b.value) for b in bounds.values()) >= 1.0 - 1e-12:
        notes.append("the bound is vacuous (>= 1): KL/n is too large for this sigma and n")
    return Certificate(
        n,
        cfg.delta,
        cfg.delta_mc,
        float(sigma),
        cfg.sigma_prior,
        space,
        per_tensor_scale,
        float(kl),
        gibbs,
        q_upper,
        bounds,
        union,
        tuple(float(c) for c in (bounds["catoni"].grid or ())),
        search,
        tuple(notes),
    )
