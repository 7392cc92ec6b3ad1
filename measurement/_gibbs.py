"""Gibbs risk of a Gaussian posterior around a fine-tune, by Monte Carlo, and the σ search.

The posterior is Q = N(w_ft, σ_l²) over the perturbed parameters (see
:mod:`measurement._perturb`). Its empirical Gibbs risk on the n examples S is

.. math:: \\hat R_S(Q) = \\mathbb{E}_{\\theta \\sim Q}\\Big[\\frac1n \\sum_{i=1}^n
          \\ell(\\theta, z_i)\\Big],

estimated from m posterior samples θ_1..θ_m by q_MC = (1/m) Σ_j R̂_S(θ_j). The loss is bounded
in [0, 1], as PAC-Bayes bounds need:

- ``"nll_clipped"``: per example, the mean over its completion tokens of
  −ln max(p_t, p_min) / ln(1/p_min) (Pérez-Ortiz et al. 2021);
- ``"zero_one"``: 1 − correct, from greedy decoding and an answer checker.

Each sample is drawn in place, evaluated on the whole dataset with fixed batches, and undone
by restoring the weights from their source. Samples are journaled, so a killed run resumes.

σ search. σ is picked on a grid fixed in advance (its size is charged as a union bound by the
certificate): bisection over the grid for the largest σ whose mean token NLL (or bounded risk)
rises by at most ``target_increase`` over the unperturbed model, on the first
``max_examples`` examples with a few samples drawn from a seed stream distinct from the one
the certificate uses.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from measurement._answers import AnswerChecker
from measurement._certify_config import RISK_LOSSES
from measurement._datasets import ExampleSet
from measurement._generate import generate_completions, seed_for
from measurement._jobs import Journal, parameter_fingerprint, rows_digest
from measurement._lm import model_max_length
from measurement._perturb import (
    PosteriorNoise,
    WeightRestorer,
    by_parameter_name,
    select_parameters,
)
from measurement._scoring import batch_examples, score_batches
from measurement._weight_kl import per_tensor_scales
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_choice, check_in_interval, check_positive_int, progress_bar

__all__ = [
    "DEFAULT_SIGMA_GRID",
    "Evaluation",
    "GibbsRisk",
    "RiskEvaluator",
    "SigmaSearch",
    "gibbs_risk",
    "sigma_search",
]

#: σ grid fixed in advance: 17 values, 4 per decade from 1e-5 to 1e-1.
DEFAULT_SIGMA_GRID = tuple(float(s) for s in np.geomspace(1e-5, 1e-1, 17))
LOSSES = RISK_LOSSES


@dataclass(frozen=True)
class Evaluation:
    """Losses of one model on the evaluation set: ``risk`` in [0, 1] and token NLL."""

    per_example: np.ndarray
    token_nll: float

    @property
    def risk(self) -> float:
        return float(self.per_example.mean())


class RiskEvaluator:
    """The bounded loss of a model on a fixed, pre-tokenized set of examples.

    Parameters
    ----------
    model, tokenizer
        The model to evaluate (its weights may change between calls) and its tokenizer.
    examples : ExampleSet
    loss : {"nll_clipped", "zero_one"}
    p_min : float in (0, 1)
        Probability floor of the clipped NLL.
    checker : AnswerChecker, optional
        Required for ``"zero_one"``.
    batch_size, max_length, add_bos, max_new_tokens
        Scoring and generation settings; batches are built once, so every call sees the same.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        examples: ExampleSet,
        *,
        loss: str = "nll_clipped",
        p_min: float = 1e-4,
        checker: AnswerChecker | None = None,
        batch_size: int = 8,
        max_length: int | None = None,
        add_bos: bool = False,
        max_new_tokens: int = 64,
    ):
        check_choice(loss, "loss", LOSSES)
        check_in_interval(p_min, "p_min", 0.0, 1.0, closed="neither", allow_nan=False)
        if loss == "zero_one" and checker is None:
            raise InvalidParameterError(
                "`checker` must be given for loss='zero_one' (the 0-1 error of the final "
                "answer); got None."
            )
        self.model, self.tokenizer, self.examples = model, tokenizer, examples
        self.loss, self.p_min, self.checker = loss, float(p_min), checker
        self.batch_size, self.add_bos, self.max_new_tokens = batch_size, add_bos, max_new_tokens
        self.max_length = model_max_length(model) if max_length is None else max_length
        self.batches = batch_examples(
            tokenizer,
            examples.prompts,
            examples.completions,
            source=examples.source,
            max_length=self.max_length,
            add_bos=add_bos,
            batch_size=batch_size,
        )
        if checker is not None:
            self.references = checker.references(examples.completions, examples.answers)

    def __len__(self) -> int:
        return len(self.examples)

    def __call__(self) -> Evaluation:
        scores = score_batches(self.model, self.batches, p_min=self.p_min)
        token_nll = float(scores.nll_sum.sum() / scores.n_tokens.sum())
        if self.loss == "nll_clipped":
            return Evaluation(scores.bounded_sum / scores.n_tokens, token_nll)
        generated = generate_completions(
            self.model,
            self.tokenizer,
            self.examples.prompts,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            add_bos=self.add_bos,
            max_length=self.max_length,
        )
        wrong = [
            0.0 if self.checker.is_correct(g[0], r) else 1.0
            for g, r in zip(generated, self.references, strict=True)
        ]
        return Evaluation(np.asarray(wrong, dtype=np.float64), token_nll)


@dataclass(frozen=True)
class GibbsRisk:
    """Monte-Carlo estimate of the Gibbs empirical risk of Q = N(w_ft, σ_l²).

    Attributes
    ----------
    sigma : float
        σ (relative to each tensor's RMS when ``per_tensor_scale``).
    space : {"weight", "adapter"}
        Posterior family.
    loss : {"nll_clipped", "zero_one"}
    sample_risks : tuple of float
        R̂_S(θ_j) of each posterior sample.
    sample_token_nll : tuple of float
        Mean token NLL of each sample (nats).
    unperturbed_risk, unperturbed_token_nll : float
        The same for the fine-tune itself (σ = 0).
    n_examples, n_parameters : int
        |S| and the number of perturbed weights.
    """

    sigma: float
    space: str
    per_tensor_scale: bool
    loss: str
    p_min: float | None
    sample_risks: tuple[float, ...]
    sample_token_nll: tuple[float, ...]
    unperturbed_risk: float
    unperturbed_token_nll: float
    n_examples: int
    n_parameters: int
    seed: int
    restore_source: str

    @property
    def n_samples(self) -> int:
        return len(self.sample_risks)

    @property
    def mean(self) -> float:
        """q_MC, the Monte-Carlo estimate of the Gibbs risk."""
        return float(np.mean(self.sample_risks))

    @property
    def std(self) -> float:
        """Standard deviation of the per-sample risks."""
        return float(np.std(self.sample_risks, ddof=1)) if self.n_samples > 1 else math.nan

    def __str__(self) -> str:
        scale = " x RMS per tensor" if self.per_tensor_scale else ""
        return (
            f"Gibbs risk ({self.loss}) of Q = N(w_ft, sigma^2), sigma = {self.sigma:.4g}{scale}, "
            f"{self.space} space ({self.n_parameters:,} weights perturbed)\n"
            f"  q_MC = {self.mean:.6f} (sd {self.std:.2g}) over {self.n_samples} samples and "
            f"{self.n_examples} examples\n"
            f"  unperturbed risk {self.unperturbed_risk:.6f}; token NLL "
            f"{self.unperturbed_token_nll:.4f} -> {np.mean(self.sample_token_nll):.4f} nats\n"
            f"  weights restored from: {self.restore_source}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sigma": self.sigma,
            "space": self.space,
            "per_tensor_scale": self.per_tensor_scale,
            "loss": self.loss,
            "p_min": self.p_min,
            "q_mc": self.mean,
            "std": self.std,
            "n_samples": self.n_samples,
            "sample_risks": list(self.sample_risks),
            "sample_token_nll": list(self.sample_token_nll),
            "unperturbed_risk": self.unperturbed_risk,
            "unperturbed_token_nll": self.unperturbed_token_nll,
            "n_examples": self.n_examples,
            "n_parameters": self.n_parameters,
            "seed": self.seed,
            "restore_source": self.restore_source,
        }


class PosteriorSampler:
    """Draws posterior samples of a model in place and puts the weights back after each."""

    def __init__(
        self,
        model: Any,
        *,
        space: str = "weight",
        per_tensor_scale: bool = False,
        stats: Any = None,
        source: str | Path | None = None,
    ):
        if space == "weight" and hasattr(model, "peft_config"):
            raise InvalidParameterError(
                "`space` 'weight' needs the adapter merged into the weights (load it with "
                "merge_adapter=True); got a model with an unmerged PEFT adapter."
            )
        named = select_parameters(model, space)
        self.params = dict(named)
        self.names = [n for n, _ in named]
        self.n_parameters = int(sum(p.numel() for _, p in named))
        self.space, self.per_tensor_scale, self.stats = space, per_tensor_scale, stats
        self._check_against_stats()
        self.restorer = WeightRestorer(self.params, source=source)

    def noise(self, sigma: float, seed: int) -> PosteriorNoise:
        if not self.per_tensor_scale:
            return PosteriorNoise.isotropic(self.names, sigma, seed)
        if self.stats is None:
            raise InvalidParameterError(
                "`stats` (weight statistics) must be given with per_tensor_scale; got None."
            )
        table = self.stats.table if self.space == "weight" else self.stats.adapter_table
        scales, _ = per_tensor_scales(table)  # the scales gaussian_kl charges
        return PosteriorNoise.per_tensor(
            self.names, sigma, by_parameter_name(scales, self.names), seed
        )

    def run(self, noise: PosteriorNoise, sample: int, evaluate: Callable[[], Evaluation]):
        """Evaluate posterior sample ``sample`` and restore the weights (even on error)."""
        try:
            noise.apply_(self.params, sample)
            return evaluate()
        finally:
            self.restorer.restore()

    def _check_against_stats(self) -> None:
        if self.stats is None:
            return
        table = self.stats.table if self.space == "weight" else self.stats.adapter_table
        if table is None:
            return
        expected = int(table["numel"].sum())
        if expected != self.n_parameters:
            raise InvalidParameterError(
                f"`stats` must describe the perturbed parameters: the {self.space}-space "
                f"statistics cover {expected:,} weights but the posterior perturbs "
                f"{self.n_parameters:,} (were they measured on the same checkpoints?)."
            )


def gibbs_risk(
    sampler: PosteriorSampler,
    evaluator: RiskEvaluator,
    *,
    sigma: float,
    n_samples: int = 10,
    seed: int = 0,
    journal: str | Path | None = None,
    progress: bool = False,
    baseline: Evaluation | None = None,
) -> GibbsRisk:
    """Estimate the Gibbs risk of N(w_ft, σ²) from ``n_samples`` posterior samples.

    Parameters
    ----------
    sampler : PosteriorSampler
        The model and which parameters to perturb (and how to restore them).
    evaluator : RiskEvaluator
        The bounded loss on the n examples.
    sigma : float
    n_samples : int
        m, the number of posterior samples.
    seed : int
        Sample j uses the generator seeded with (seed, j, tensor index).
    journal : path, optional
        Finished samples are recorded; a rerun resumes.
    progress : bool
    baseline : Evaluation, optional
        The unperturbed evaluation, when already computed.
    """
    m = check_positive_int(n_samples, "n_samples")
    noise = sampler.noise(sigma, seed)
    base = baseline if baseline is not None else evaluator()
    # everything a sample's risk depends on: the weights (a different fine-tune must never
    # reuse the draws of another), the rows, and every setting of the noise and of the loss
    stats_table = None
    if sampler.stats is not None and sampler.per_tensor_scale:
        stats_table = (
            sampler.stats.table if sampler.space == "weight" else sampler.stats.adapter_table
        )
    fingerprint = {
        "sigma": sigma,
        "seed": seed,
        "space": sampler.space,
        "per_tensor": sampler.per_tensor_scale,
        "loss": evaluator.loss,
        "n": len(evaluator),
        "p_min": evaluator.p_min,
        "weights": parameter_fingerprint(evaluator.model),
        "perturbed": hashlib.sha256("\n".join(sampler.names).encode()).hexdigest(),
        "data": rows_digest(evaluator.examples),
        "checker": None if evaluator.checker is None else evaluator.checker.to_dict(),
        "max_length": evaluator.max_length,
        "add_bos": evaluator.add_bos,
        "max_new_tokens": evaluator.max_new_tokens,
        "stats": None if stats_table is None else rows_digest(stats_table),
    }
    risks, nlls = [], []
    with (
        Journal(journal or None, fingerprint) as book,
        progress_bar(f"posterior samples (sigma={sigma:.3g})", m, enabled=progress) as advance,
    ):
        done = book.done
        for j in range(m):
            if f"sample-{j}" in done:
                risk, nll = done[f"sample-{j}"]
            else:
                ev = sampler.run(noise, j, evaluator)
                risk, nll = ev.risk, ev.token_nll
                book.record(f"sample-{j}", [risk, nll])
            risks.append(float(risk))
            nlls.append(float(nll))
            advance(1)
    return GibbsRisk(
        float(sigma),
        sampler.space,
        sampler.per_tensor_scale,
        evaluator.loss,
        evaluator.p_min if evaluator.loss == "nll_clipped" else None,
        tuple(risks),
        tuple(nlls),
        base.risk,
        base.token_nll,
        len(evaluator),
        sampler.n_parameters,
        int(seed),
        sampler.restorer.source,
    )


@dataclass(frozen=True)
class SigmaSearch:
    """Bisection over a σ grid fixed in advance for a target loss increase.

    Attributes
    ----------
    grid : tuple of float
        The grid (its size is the union-bound cost the certificate pays).
    target_increase : float
    criterion : {"nll", "risk"}
        Mean token NLL (nats) or bounded risk.
    baseline : float
        The criterion for the unperturbed model.
    evaluated : tuple of (float, float)
        (σ, mean criterion over the search samples) at each grid point tried.
    chosen : float
        The largest σ tried whose increase is within the target (the smallest σ of the grid
        when none is: see ``notes``).
    """

    grid: tuple[float, ...]
    target_increase: float
    criterion: str
    baseline: float
    evaluated: tuple[tuple[float, float], ...]
    chosen: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        lines = [
            f"sigma search on a fixed grid of {len(self.grid)} ({self.grid[0]:.3g} .. "
            f"{self.grid[-1]:.3g}); target {self.criterion} increase <= {self.target_increase:g} "
            f"over {self.baseline:.4f}"
        ]
        lines += [f"  sigma {s:.4g}: +{v - self.baseline:.4f}" for s, v in self.evaluated]
        lines.append(f"  chosen sigma = {self.chosen:.4g}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid": list(self.grid),
            "target_increase": self.target_increase,
            "criterion": self.criterion,
            "baseline": self.baseline,
            "evaluated": [{"sigma": s, "value": v} for s, v in self.evaluated],
            "chosen": self.chosen,
            "notes": list(self.notes),
        }


def sigma_search(
    sampler: PosteriorSampler,
    evaluator: RiskEvaluator,
    *,
    grid: Sequence[float] = DEFAULT_SIGMA_GRID,
    target_increase: float = 0.1,
    criterion: str = "nll",
    n_samples: int = 3,
    seed: int = 0,
    progress: bool = False,
) -> SigmaSearch:
    """Largest σ on ``grid`` whose loss increase stays within ``target_increase``.

    Bisection over the sorted grid (the increase is taken to grow with σ), with ``n_samples``
    posterior samples per σ tried, seeded from a stream distinct from the certificate's.
    """
    values = sorted({float(s) for s in grid})
    if not values:
        raise InvalidParameterError("`grid` must hold at least one sigma; got [].")
    for s in values:
        check_in_interval(s, "grid", 0.0, closed="neither", allow_nan=False)
    check_in_interval(target_increase, "target_increase", 0.0, closed="neither", allow_nan=False)
    check_choice(criterion, "criterion", ("nll", "risk"))
    m = check_positive_int(n_samples, "n_samples")
    base = evaluator()
    pick = (lambda ev: ev.token_nll) if criterion == "nll" else (lambda ev: ev.risk)
    baseline = pick(base)
    evaluated: dict[float, float] = {}
    lo, hi = -1, len(values)
    steps = max(1, math.ceil(math.log2(len(values) + 1)))
    with progress_bar("sigma search", steps * m, enabled=progress) as advance:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            noise = sampler.noise(values[mid], seed_for(seed, 1, mid))
            vals = []
            for j in range(m):
                vals.append(pick(sampler.run(noise, j, evaluator)))
                advance(1)
            evaluated[values[mid]] = float(np.mean(vals))
            if evaluated[values[mid]] - baseline <= target_increase:
                lo = mid
            else:
                hi = mid
    notes = []
    if lo < 0:
        notes.append(
            f"even the smallest sigma of the grid ({values[0]:.3g}) raises the {criterion} by "
            "more than the target; it is used anyway"
        )
    elif lo == len(values) - 1:
        notes.append("the largest sigma of the grid is within the target (the grid may be short)")
    chosen = values[max(lo, 0)]
    return SigmaSearch(
        tuple(values),
        float(target_increase),
        criterion,
        float(baseline),
        tuple(sorted(evaluated.items())),
        chosen,
        tuple(notes),
    )
