"""A PAC-Bayes certificate for a real fine-tune: KL from its weights, Gibbs risk by Monte Carlo.

Prior P = N(w_base, σ_p²), posterior Q = N(w_ft, σ²) (one σ, or σ times each tensor's RMS;
in weight space over all the model's weights, or in adapter space over a LoRA adapter's own
parameters, where P is centred at the adapter's initialisation θ₀, see
:func:`measurement.adapter_prior_centre`). On the bound set S of n examples, drawn i.i.d. from
the task distribution (by default a uniform random subset of the file's rows, with a recorded
seed), with m posterior samples and a loss in [0, 1]:

1. **KL(Q‖P)** in closed form from the weight statistics (:func:`measurement.gaussian_kl`).
2. **Monte-Carlo step** (confidence 1 − δ′): the per-sample risks R̂_S(θ_j) are i.i.d. in
   [0, 1] with mean R̂_S(Q), so with probability ≥ 1 − δ′

   .. math:: \\hat R_S(Q) \\le \\bar q = \\mathrm{kl}^{-1}\\big(q_{MC},\\ \\ln(1/\\delta')/m\\big).

   The slack of this step, q̄ − q_MC, shrinks like √(q ln(1/δ′)/m); unless m is given it is
   chosen as the smallest m whose slack at the Gibbs risk of a few pilot samples (an
   independent seed stream, so m does not depend on the certificate's samples) is at most a
   stated target (Pérez-Ortiz et al. 2021 use m in the thousands for the same reason).
3. **PAC-Bayes step** (confidence 1 − δ, simultaneously for every σ of a grid of size G fixed
   in advance, which costs ln G: ``union={"sigma grid": G}``):

   - kl bound (Langford–Seeger–Maurer): R(Q) ≤ kl⁻¹(q̄, (KL + ln(2√n/δ) + ln G)/n);
   - Catoni, over a grid of k values of C fixed in advance:
     R(Q) ≤ min_C [1 − exp(−C q̄ − (KL + ln(k/δ) + ln G)/n)] / (1 − e^{−C}).

Each bound then holds with probability ≥ 1 − δ − δ′; both together (and so their minimum)
with probability ≥ 1 − 2δ − δ′. The σ search (when σ is not given) uses its own posterior
samples, drawn from a seed stream independent of the certificate's, so the Monte-Carlo step
is not biased by the choice of σ.

**Baseline.** The base model itself, a single predictor fixed before S is seen (zero bits,
KL = 0, no Monte Carlo), is certified on the same S at confidence 1 − δ: the exact binomial
tail for the 0-1 loss (Langford 2005), kl⁻¹(r̂, ln(1/δ)/n) for the clipped NLL (the Chernoff
bound, valid for i.i.d. losses in [0, 1]). A fine-tune's certificate below the base's
certifies, with probability ≥ 1 − 3δ − δ′ for both statements, that fine-tuning helped.

**Learnt prior** (``prior`` and ``prior_rows``; Dziugaite et al. 2021, Pérez-Ortiz et al.
2021): P = N(w_prior, σ_p²) centred at a fine-tune from the base on a random part S_P of the
data (the rows ``prior_rows`` names); the bound set is drawn from the other rows only (n = its
size), and no bound row may repeat a prior row's text. P is then fixed before the bound set is
seen and the bound holds as above, but the KL measures the move from w_prior, not from the base:
such a certificate is labelled "tightness only" (see :mod:`measurement._prior_split`).
"""

from __future__ import annotations

import gc
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from measurement._adapter_init import (
    AdapterCentre,
    adapter_prior_centre,
    check_same_adapter_family,
    is_adapter_folder,
    rebuild_adapter_init,
)
from measurement._answers import AnswerChecker
from measurement._certify_config import CertifyConfig
from measurement._datasets import ExampleSet, as_example_set
from measurement._generate import seed_for
from measurement._gibbs import (
    DEFAULT_SIGMA_GRID,
    Evaluation,
    GibbsRisk,
    PosteriorSampler,
    RiskEvaluator,
    SigmaSearch,
    gibbs_risk,
    sigma_search,
)
from measurement._prior_split import (
    KIND_LABELS,
    PriorSplit,
    check_disjoint,
    check_same_architecture,
)
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_in_interval, check_positive_int, to_jsonable

__all__ = [
    "BaseCertificate",
    "Certificate",
    "CertifyConfig",
    "base_certificate",
    "certificate_bounds",
    "certify",
    "mc_samples_for_slack",
    "mc_slack",
]


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


def mc_slack(q_mc: float, m: int, delta_mc: float) -> float:
    """What the Monte-Carlo step adds: kl⁻¹(q_MC, ln(1/δ′)/m) − q_MC, in [0, 1 − q_MC]."""
    import pacbound

    q = float(check_in_interval(q_mc, "q_mc", 0.0, 1.0, allow_nan=False))
    m = check_positive_int(m, "m")
    d = float(check_in_interval(delta_mc, "delta_mc", 0.0, 1.0, closed="neither"))
    return float(pacbound.kl_inv_upper(q, math.log(1.0 / d) / m)) - q


def mc_samples_for_slack(q: float, slack: float, delta_mc: float, *, maximum: int = 10_000) -> int:
    """The smallest m with ``mc_slack(q, m, delta_mc) <= slack`` (``maximum`` if none is).

    The slack decreases in m (the kl-inverse's budget ln(1/δ′)/m does), so m is found by
    bisection. For q = 0.05, δ′ = 0.01 and a slack of 0.02 it is about 1,400; at q = 0 about
    230; the worst case q ≈ 0.5 needs about ln(1/δ′)/(2·slack²) ≈ 5,800.
    """
    check_in_interval(slack, "slack", 0.0, 1.0, closed="neither", allow_nan=False)
    hi = check_positive_int(maximum, "maximum")
    if mc_slack(q, hi, delta_mc) > slack:
        return hi
    lo = 0  # slack(lo) > target (or lo = 0), slack(hi) <= target
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mc_slack(q, mid, delta_mc) <= slack:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class BaseCertificate:
    """The trivial baseline: the base model itself certified on the same bound set.

    Attributes
    ----------
    risk : float
        Its empirical risk r̂ on the n examples (same loss as the certificate).
    token_nll : float
        Its mean token NLL (nats).
    n : int
    delta : float
        Confidence budget: the value holds with probability ≥ 1 − δ.
    value : float
        The bound: exact binomial tail (0-1 loss) or kl⁻¹(r̂, ln(1/δ)/n) (clipped NLL).
    method : str
    """

    risk: float
    token_nll: float
    n: int
    delta: float
    value: float
    method: str

    def __str__(self) -> str:
        return (
            f"{self.value:.6f} (base model itself, KL = 0: risk {self.risk:.6f}, "
            f"{self.method}, delta = {self.delta:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "risk": self.risk,
            "token_nll": self.token_nll,
            "n": self.n,
            "delta": self.delta,
            "value": self.value,
            "method": self.method,
        }


def base_certificate(evaluation: Evaluation, loss: str, delta: float) -> BaseCertificate:
    """Certify a predictor fixed before the bound set was seen (no KL, no Monte Carlo)."""
    import pacbound

    per = np.asarray(evaluation.per_example, dtype=np.float64)
    n, risk = len(per), float(per.mean())
    if loss == "zero_one":
        k = round(float(per.sum()))
        value = float(pacbound.test_set_bound(k, n, delta).value)
        method = "exact binomial tail (Langford 2005)"
    else:
        value = float(pacbound.kl_inv_upper(risk, math.log(1.0 / delta) / n))
        method = "Chernoff kl^-1(r, ln(1/delta)/n)"
    return BaseCertificate(risk, float(evaluation.token_nll), n, float(delta), value, method)


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
    dtype : str
        Precision the model was evaluated in.
    bound_set : dict
        How the n rows were drawn: ``draw`` ("random" or "file"), ``seed``, ``of`` (rows in
        the file), ``rows`` (their positions in the file, in draw order).
    prior_centre : AdapterCentre or None
        The adapter-space prior centre (None in weight space: the base weights).
    monte_carlo : dict
        How m was chosen (``"given"`` or ``"slack"``, the target slack, the pilot's risk) and
        ``slack``, what the Monte-Carlo step added (q_upper − q_MC).
    base : BaseCertificate or None
        The base model itself certified on the same bound set.
    assumptions : tuple of (str, str)
        Every assumption the certificate rests on, by name.
    prior : dict
        The prior's provenance: ``kind`` ("base" or "learnt"), ``label`` (what the KL
        measures), ``centre`` (the checkpoint P is centred at), ``text``; for a learnt prior
        also the split (``n_rows``, ``fraction``, ``seed``, ``of``, ``rows_file``).
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
    dtype: str = "float32"
    bound_set: dict[str, Any] = field(default_factory=dict)
    prior_centre: AdapterCentre | None = None
    monte_carlo: dict[str, Any] = field(default_factory=dict)
    base: BaseCertificate | None = None
    assumptions: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    prior: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """What the KL measures: the prior's kind label (base-relative, or learnt)."""
        return str(self.prior.get("label", KIND_LABELS["base"]))

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

    @property
    def mc_slack(self) -> float:
        """What the Monte-Carlo step added to the Gibbs risk: q_upper − q_MC."""
        return float(self.q_upper - self.gibbs.mean)

    @property
    def beats_base(self) -> bool | None:
        """Whether the certificate is below the base model's (None without the baseline)."""
        return None if self.base is None else bool(self.best < self.base.value)

    def __str__(self) -> str:
        g = self.gibbs
        scale = " x RMS per tensor" if self.per_tensor_scale else ""
        unions = ", ".join(f"{k} {v} (ln {v} = {math.log(v):.3f})" for k, v in self.union.items())
        mc = self.monte_carlo
        how_m = (
            f"m chosen for a slack <= {mc['target_slack']:g} at the pilot's risk "
            f"{mc['pilot_risk']:.4f}"
            if mc.get("chosen") == "slack"
            else "m given"
        )
        rows = [
            ("kind", self.kind),
            ("prior", str(self.prior.get("text", "centred at the base (data-free)"))),
            ("posterior", f"N(w_ft, sigma^2), {self.space} space, {g.n_parameters:,} weights"),
            (
                "sigma",
                f"{self.sigma:.4g}{scale}"
                + ("" if self.sigma_prior is None else f" (prior {self.sigma_prior:.4g})"),
            ),
            ("KL(Q||P)", f"{self.kl:.6g} nats"),
            ("n (examples)", f"{self.n}"),
            ("loss", g.loss + (f" (p_min {g.p_min:g})" if g.p_min is not None else "")),
            ("precision", self.dtype),
            ("unperturbed risk", f"{g.unperturbed_risk:.6f}"),
            ("Gibbs risk q_MC", f"{g.mean:.6f} over m = {g.n_samples} samples"),
            (
                "MC kl-inverse (delta')",
                f"{self.q_upper:.6f}  (delta' = {self.delta_mc:g}; the MC step adds "
                f"{self.mc_slack:.4f}; {how_m})",
            ),
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
        if self.base is not None:
            verdict = "below" if self.beats_base else "not below"
            rows.append(("base certificate", str(self.base)))
            rows.append(("vs base", f"the fine-tune's certificate is {verdict} the base's"))
        width = max(len(k) for k, _ in rows)
        lines = ["PAC-Bayes certificate"] + [f"  {k:<{width}}  {v}" for k, v in rows]
        if self.search is not None:
            lines.append(
                f"  sigma chosen by search: {len(self.search.evaluated)} grid points "
                f"tried, target +{self.search.target_increase:g} {self.search.criterion}"
            )
        if self.assumptions:
            lines.append("  assumptions:")
            lines += [f"    - {k}: {v}" for k, v in self.assumptions]
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
            "mc_slack": self.mc_slack,
            "monte_carlo": dict(self.monte_carlo),
            "bounds": {k: to_jsonable(b) for k, b in self.bounds.items()},
            "best": self.best,
            "union": dict(self.union),
            "catoni_grid": list(self.catoni_grid),
            "confidence_each": self.confidence_each,
            "confidence_all": self.confidence_all,
            "search": None if self.search is None else self.search.to_dict(),
            "dtype": self.dtype,
            "bound_set": to_jsonable(self.bound_set),
            "prior_centre": None if self.prior_centre is None else self.prior_centre.to_dict(),
            "base_certificate": None if self.base is None else self.base.to_dict(),
            "beats_base": self.beats_base,
            "kind": self.kind,
            "prior": to_jsonable(self.prior),
            "assumptions": dict(self.assumptions),
            "notes": list(self.notes),
        }


def _draw_bound_set(
    examples: ExampleSet, cfg: CertifyConfig, split: PriorSplit | None = None
) -> tuple[ExampleSet, dict]:
    """The n rows of the bound set: a uniform draw without replacement, or the first n.

    With a learnt prior's ``split``, the rows are drawn from those outside it only, and a bound
    row whose text (prompt + completion) repeats a prior row's is refused.
    """
    total = len(examples)
    pool = np.arange(total)
    where = f"{examples.source} ({total})"
    if split is not None:
        split.check_against(total, str(examples.source))
        pool = np.setdiff1d(pool, np.asarray(split.rows, dtype=np.int64))
        where = f"{examples.source} outside the prior's {len(split.rows)} rows ({len(pool)})"
    n = len(pool) if cfg.n is None else cfg.n
    if n > len(pool):
        raise InvalidParameterError(
            f"`n` must be at most the number of examples in {where}; got {n}."
        )
    of = (
        f"the {total} rows of {examples.source}"
        if split is None
        else f"the {len(pool)} rows outside the prior's {len(split.rows)} of {examples.source} "
        f"({total} rows)"
    )
    if cfg.bound_set == "random":
        rows = pool[np.random.default_rng(cfg.data_seed).permutation(len(pool))[:n]]
        text = f"{n} of {of}, drawn uniformly without replacement (data_seed {cfg.data_seed})"
    else:
        rows = pool[:n]
        text = f"the first {n} of {of}, in file order (stated by the user to be a random order)"
    if split is not None:

        def keys(idx) -> list[str]:
            return [examples.prompts[i] + examples.completions[i] for i in idx]

        check_disjoint(keys(split.rows), keys(rows))
    info = {
        "draw": cfg.bound_set,
        "seed": cfg.data_seed if cfg.bound_set == "random" else None,
        "n": n,
        "of": total,
        "excluded": 0 if split is None else len(split.rows),
        "source": str(examples.source),
        "rows": [int(r) for r in rows],
        "text": text,
    }
    return examples.subset(rows), info


def _loss_text(loss: str, p_min: float) -> str:
    if loss == "zero_one":
        return "0-1 error of the final answer under greedy decoding, in {0, 1}"
    return (
        f"clipped NLL -ln max(p, {p_min:g}) / ln(1/{p_min:g}) per completion token, averaged "
        "per example, in [0, 1]"
    )


def certify(
    base: str | Path,
    finetuned: str | Path | None = None,
    data: ExampleSet | str | Path | None = None,
    config: CertifyConfig | None = None,
    *,
    adapter: str | Path | None = None,
    adapter_init: str | Path | None = None,
    prior: str | Path | None = None,
    prior_rows: PriorSplit | str | Path | Sequence[int] | dict | None = None,
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
        The base model folder: the prior's centre (unless ``prior`` is given), and the
        baseline certified beside the fine-tune.
    finetuned : path, optional
        The fully fine-tuned model folder, or a PEFT adapter folder (recognised by its
        adapter_config.json; or give ``adapter``).
    data : ExampleSet or path
        The examples the bound set is drawn from: i.i.d. draws from the task distribution
        (typically the fine-tune's training set). ``config.n`` rows are drawn at random with
        ``config.data_seed`` (or taken in file order with ``bound_set="file"``).
    config : CertifyConfig, optional
        Budgets, posterior, σ search and Monte-Carlo settings (see :class:`CertifyConfig` for
        each one and its allowed values).
    adapter : path, optional
        A PEFT LoRA adapter on ``base`` (instead of ``finetuned``).
    adapter_init : path, optional
        The adapter saved at initialisation: the adapter-space prior centre θ₀ (default: the
        one recorded in the adapter folder, else one rebuilt from ``config.adapter_seed`` or a
        recorded seed, else 0; see :func:`measurement.adapter_prior_centre`).
    prior : path, optional
        A learnt prior, trained from ``base`` on the rows ``prior_rows`` names. For a full
        fine-tune: a checkpoint folder with the fine-tune's tensor names and shapes; P is
        centred at its weights, in weight space. For a LoRA ``adapter``: a PEFT adapter folder
        of the same family (rank, targets, base); P is centred at its A and B, in adapter space
        (``config.space = "adapter"``; not with ``adapter_init``). Needs ``prior_rows``.
    prior_rows : path, list of int, mapping or PriorSplit, optional
        The rows of ``data`` the prior was trained on: a JSON file holding a list of 0-based
        row indices or ``{"rows": [...], "fraction": f, "seed": s, "of": N}`` (see
        :class:`measurement._prior_split.PriorSplit`). The bound set is drawn from the other
        rows (n = their number unless ``config.n`` is smaller), and must not repeat a prior
        row's text.
    checker : AnswerChecker, optional
        Answer checker of the ``"zero_one"`` loss (default: the final-answer regex,
        ``#### N`` or "answer is N").
    stats : WeightStats, optional
        Precomputed :func:`measurement.weight_statistics` of (base, fine-tune); its adapter
        table fixes the adapter-space centre it was measured against.
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
    if adapter_init is not None and adapter is None:
        raise InvalidParameterError(
            f"`adapter_init` must be used with a LoRA adapter; got adapter_init={adapter_init!r} "
            "for a full fine-tune."
        )
    if data is None:
        raise InvalidParameterError("`data` must be the bound set (a dataset); got None.")
    split = _learnt_prior(prior, prior_rows, finetuned, adapter, stats, cfg.space, adapter_init)
    if cfg.loss == "zero_one" and checker is None:
        checker = AnswerChecker(pattern=DEFAULT_ANSWER_PATTERN)
    sigma, space, per_tensor_scale = cfg.sigma, cfg.space, cfg.per_tensor_scale
    grid = cfg.sigma_grid if cfg.sigma_grid is not None or sigma is not None else DEFAULT_SIGMA_GRID
    centre = None
    if space == "adapter":
        if stats is not None:
            measured = stats.meta.get("adapter_init")
            if adapter_init is not None and str(adapter_init) != measured:
                raise InvalidParameterError(
                    f"`adapter_init` must be the one `stats` were measured against "
                    f"({measured!r}); got {str(adapter_init)!r}."
                )
            centre = AdapterCentre("statistics", measured)
        elif split is not None:  # a learnt LoRA prior: theta_prior, the prior run's adapter
            centre = AdapterCentre("learnt", str(prior))
        else:
            centre = adapter_prior_centre(adapter, adapter_init=adapter_init, seed=cfg.adapter_seed)
    if stats is None:
        with tempfile.TemporaryDirectory(prefix="adapter-init-") as tmp:
            init_path = None if centre is None else centre.path
            if centre is not None and centre.kind == "seed":
                init_path = rebuild_adapter_init(base, adapter, centre.seed, Path(tmp) / "init")
            stats = weight_statistics(
                base if prior is None or adapter is not None else prior,
                finetuned,
                adapter=adapter,
                adapter_init=init_path,
                base_norms=adapter is not None and per_tensor_scale and space == "weight",
                progress=progress,
            )
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
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    examples, bound_set = _draw_bound_set(
        as_example_set(data, columns=columns, tokenizer=tok), cfg, split
    )
    n = bound_set["n"]
    kwargs = dict(loss=cfg.loss, p_min=cfg.p_min, checker=checker, batch_size=cfg.batch_size)
    evaluator = RiskEvaluator(model, tok, examples, **kwargs)
    sampler = PosteriorSampler(
        model, space=space, per_tensor_scale=per_tensor_scale, stats=stats, source=source
    )
    monte_carlo: dict[str, Any] = {"chosen": "given", "target_slack": None, "pilot_risk": None}
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
        unperturbed = evaluator()
        m = cfg.mc_samples
        if m is None:
            started = time.perf_counter()
            pilot = gibbs_risk(
                sampler,
                evaluator,
                sigma=sigma,
                n_samples=cfg.mc_pilot,
                seed=seed_for(cfg.seed, 3),
                baseline=unperturbed,
            )
            per_sample = (time.perf_counter() - started) / pilot.n_samples
            cap = cfg.mc_max_samples
            if cfg.mc_time_budget is not None:
                cap = max(1, min(cap, int(cfg.mc_time_budget / max(per_sample, 1e-9))))
            m = mc_samples_for_slack(pilot.mean, cfg.mc_slack, cfg.delta_mc, maximum=cap)
            monte_carlo = {
                "chosen": "slack",
                "target_slack": cfg.mc_slack,
                "pilot_risk": pilot.mean,
                "pilot_samples": pilot.n_samples,
                "seconds_per_sample": per_sample,
                "max_samples": cap,
            }
        gibbs = gibbs_risk(
            sampler,
            evaluator,
            sigma=sigma,
            n_samples=m,
            seed=seed_for(cfg.seed, 2),
            journal=journal,
            progress=progress,
            baseline=unperturbed,
        )
        base_eval = None
        if cfg.base_certificate and adapter is not None and space == "adapter":
            with model.disable_adapter():
                base_eval = evaluator()
    finally:
        sampler.restorer.close()
    if cfg.base_certificate and base_eval is None:
        # the fine-tune's weights are no longer needed: free them before loading the base
        evaluator = sampler = model = None
        gc.collect()
        base_model, _ = load_causal_lm(base, dtype=cfg.dtype, device=cfg.device)
        base_eval = RiskEvaluator(base_model, tok, examples, **kwargs)()
        del base_model
    baseline = None if base_eval is None else base_certificate(base_eval, cfg.loss, cfg.delta)
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
    monte_carlo["slack"] = float(q_upper - gibbs.mean)
    notes = [] if search is None else list(search.notes)
    if min(float(b.value) for b in bounds.values()) >= 1.0 - 1e-12:
        notes.append(
            "the bound is vacuous (>= 1): KL/n is too large for this sigma and n"
            if kl > 0
            else "the bound is vacuous (>= 1) at KL = 0: n (or m) is too small"
        )
    if monte_carlo["chosen"] == "slack" and monte_carlo["slack"] > cfg.mc_slack + 1e-12:
        reason = (
            f"m reached its cap of {monte_carlo['max_samples']} (mc_max_samples"
            + (", mc_time_budget)" if cfg.mc_time_budget is not None else ")")
            if gibbs.n_samples >= monte_carlo["max_samples"]
            else "the Gibbs risk came out above the pilot's"
        )
        notes.append(
            f"the Monte-Carlo step added {monte_carlo['slack']:.4f}, more than the target "
            f"{cfg.mc_slack:g} ({reason})"
        )
    if dtype != "float32":
        notes.append(
            f"the model was evaluated in {dtype} while the KL comes from float32 statistics: "
            f"the centre and each posterior sample are rounded to {dtype}, so the Q evaluated "
            "is only approximately the Q whose KL is charged"
        )
    catoni = tuple(float(c) for c in (bounds["catoni"].grid or ()))
    provenance = _provenance(base, prior, split, space, centre)
    assumptions = _assumptions(
        cfg, bound_set, space, provenance, sigma, search, union, catoni, gibbs, monte_carlo, dtype
    )
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
        catoni,
        search,
        tuple(notes),
        dtype=dtype,
        bound_set=bound_set,
        prior_centre=centre,
        monte_carlo=monte_carlo,
        base=baseline,
        assumptions=assumptions,
        prior=provenance,
    )


def _learnt_prior(
    prior: Any,
    prior_rows: Any,
    finetuned: Any,
    adapter: Any,
    stats: Any,
    space: str = "weight",
    adapter_init: Any = None,
) -> PriorSplit | None:
    """Check a learnt prior's inputs (before anything heavy is loaded); its split, or None."""
    if prior is None and prior_rows is None:
        return None
    if prior is None or prior_rows is None:
        raise InvalidParameterError(
            "`prior` (the learnt prior's checkpoint) and `prior_rows` (the rows it was trained "
            f"on) must be given together; got prior={prior!r}, prior_rows="
            f"{'given' if prior_rows is not None else None}."
        )
    if stats is not None:
        raise InvalidParameterError(
            "`stats` must not be given with `prior`: the KL is measured from the prior's "
            "weights, and precomputed statistics are measured from the base's."
        )
    if adapter is None:
        check_same_architecture(prior, finetuned)
    else:
        _check_adapter_prior(prior, adapter, space, adapter_init)
    return PriorSplit.coerce(prior_rows)


def _check_adapter_prior(prior: Any, adapter: Any, space: str, adapter_init: Any) -> None:
    """A learnt prior for a LoRA fine-tune: an adapter of the same family, in adapter space."""
    if not is_adapter_folder(prior):
        raise InvalidParameterError(
            f"`prior` for the LoRA adapter {str(adapter)!r} must be a PEFT adapter folder (a LoRA "
            f"fine-tune from the base on the prior's rows, with adapter_config.json); got "
            f"{str(prior)!r}."
        )
    if space != "adapter":
        raise InvalidParameterError(
            "a learnt LoRA prior is certified in adapter space (P = N(theta_prior, sigma^2) over "
            f"the adapter's parameters); got space={space!r}: pass space='adapter'."
        )
    if adapter_init is not None:
        raise InvalidParameterError(
            "`adapter_init` and `prior` both set the adapter-space prior's centre; give one; got "
            f"adapter_init={str(adapter_init)!r}, prior={str(prior)!r}."
        )
    check_same_adapter_family(Path(adapter), Path(prior), role="prior")


def _provenance(
    base: Any, prior: Any, split: PriorSplit | None, space: str, centre: AdapterCentre | None
) -> dict[str, Any]:
    """Where P is centred and what its KL therefore measures (``Certificate.prior``)."""
    if split is not None:
        return {
            "kind": "learnt",
            "label": KIND_LABELS["learnt"],
            "centre": str(prior),
            "text": f"learnt prior from {prior} on {split.describe()}",
            **split.to_dict(),
        }
    if space == "adapter":
        return {
            "kind": "base",
            "label": KIND_LABELS["base"],
            "centre": None if centre is None else centre.path,
            "text": f"adapter-space prior, {centre}",
        }
    return {
        "kind": "base",
        "label": KIND_LABELS["base"],
        "centre": str(base),
        "text": f"centred at the base {base} (data-free)",
    }


def _assumptions(
    cfg: CertifyConfig,
    bound_set: dict,
    space: str,
    provenance: dict[str, Any],
    sigma: float,
    search: SigmaSearch | None,
    union: dict[str, int],
    catoni: Sequence[float],
    gibbs: GibbsRisk,
    monte_carlo: dict,
    dtype: str,
) -> tuple[tuple[str, str], ...]:
    """Every assumption the certificate uses, named (nothing is certified silently)."""
    sp = "sigma" if cfg.sigma_prior is None else f"{cfg.sigma_prior:g}"
    scale = " x RMS of each tensor's prior centre" if cfg.per_tensor_scale else ""
    learnt = provenance["kind"] == "learnt"
    if learnt:
        over = (
            "N(theta_prior, {sp}^2{scale}) over the adapter's parameters"
            if space == "adapter"
            else "N(w_prior, {sp}^2{scale}) over all weights"
        ).format(sp=sp, scale=scale)
        prior = (
            f"P = {over}, {provenance['text']}: fixed before "
            "the bound set was seen, its rows excluded from the bound set and no bound row "
            "repeating a prior row's text (checked); that the prior was trained on those rows "
            "only is taken from the rows file (not checkable here). The KL measures the move "
            "from the prior, not from the base: tightness only, not the paper's complexity"
        )
    elif space == "adapter":
        prior = f"P = N(theta0, {sp}^2{scale}) over the adapter's parameters; {provenance['text']}"
    else:
        prior = f"P = N(w_base, {sp}^2{scale}) over all weights, centred at the base (data-free)"
    if search is not None:
        grid_src = "given" if cfg.sigma_grid is not None else "the package default"
        sig = (
            f"{sigma:.4g} chosen on the bound set from a grid of {len(search.grid)} fixed in "
            f"advance ({grid_src}, never computed from the data); ln {len(search.grid)} charged"
        )
    elif union:
        sig = f"{sigma:.4g}, one of a given grid of {union['sigma grid']} fixed in advance, charged"
    else:
        sig = (
            f"{sigma:.4g}, fixed in advance by the caller (no union cost: it must not have been "
            "chosen by looking at this bound set)"
        )
    costs = [f"{k} of {v} (ln {v} = {math.log(v):.3f})" for k, v in union.items()]
    costs.append(f"Catoni C grid of {len(catoni)} (ln {len(catoni)} = {math.log(len(catoni)):.3f})")
    if monte_carlo["chosen"] == "slack":
        mc = (
            f"m = {gibbs.n_samples} posterior samples, chosen from {monte_carlo['pilot_samples']} "
            f"independent pilot samples for a slack <= {monte_carlo['target_slack']:g}; "
            f"the step added {monte_carlo['slack']:.4f}"
        )
    else:
        mc = f"m = {gibbs.n_samples} posterior samples (given); the step added {monte_carlo['slack']:.4f}"
    split = (
        f"delta = {cfg.delta:g} to each PAC-Bayes bound (kl, Catoni), delta' = {cfg.delta_mc:g} to "
        f"the Monte-Carlo step: each bound holds w.p. >= {1 - cfg.delta - cfg.delta_mc:.4f}, "
        f"both w.p. >= {1 - 2 * cfg.delta - cfg.delta_mc:.4f}"
        + (
            f"; the base certificate separately at delta = {cfg.delta:g}"
            if cfg.base_certificate
            else ""
        )
    )
    iid = f"i.i.d. draws from the task distribution: {bound_set['text']}"
    if learnt:
        recorded = [
            f"{k} {provenance[k]:g}" for k in ("fraction", "seed") if provenance[k] is not None
        ]
        iid += (
            "; the prior/bound split of the file was random and fixed before training ("
            + (
                ", ".join(recorded) + " as recorded"
                if recorded
                else "assumed: the rows file records no fraction or seed"
            )
            + ")"
        )
    return (
        ("bound set", iid),
        ("loss", _loss_text(cfg.loss, cfg.p_min)),
        ("prior", prior),
        ("posterior", f"Q = N(fine-tune, sigma^2{scale}), {space} space, sampled in {dtype}"),
        ("sigma", sig),
        ("union costs", "; ".join(costs)),
        ("monte carlo", mc),
        ("delta split", split),
    )
