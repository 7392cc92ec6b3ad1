"""The settings of :func:`measurement.certify`, declared once: :class:`CertifyConfig`.

Light on purpose (numpy only), so that ``tradeoff certify --help`` builds its options from these
declarations without importing torch or pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pacbound.exceptions import InvalidParameterError
from pacbound.support import Config, Interval, config_field

__all__ = ["BOUND_SET_DRAWS", "RISK_LOSSES", "SPACES", "CertifyConfig"]

RISK_LOSSES = ("nll_clipped", "zero_one")
"""Losses in [0, 1] of the Gibbs risk: the clipped, scaled NLL, or the 0-1 answer error."""
SPACES = ("weight", "adapter")
"""Posterior families: all the model's weights, or a LoRA adapter's own parameters."""
BOUND_SET_DRAWS = ("random", "file")
"""How the bound set's rows are taken: at random with a recorded seed, or the first N rows (the
user states that the file order is already random)."""

_POSITIVE = Interval(0.0, math.inf, "neither")
_UNIT_OPEN = Interval(0.0, 1.0, "neither")


@dataclass(frozen=True)
class CertifyConfig(Config):
    """How :func:`measurement.certify` certifies: budgets, posterior, search, Monte Carlo.

    Every field's allowed values are declared once, in its ``metadata``; ``__post_init__``
    checks them (then the rules that tie fields together), and ``tradeoff certify`` builds its
    options from the same declaration.

    Attributes
    ----------
    n : int >= 1, optional
        Examples in the bound set (default all rows; with a learnt prior, all rows outside
        the prior's split, which are the only ones drawn from).
    bound_set : {"random", "file"}
        ``"random"``: the n rows are drawn uniformly without replacement with ``data_seed``
        (a file sorted by difficulty would otherwise break the i.i.d. assumption);
        ``"file"``: the first n rows, the user stating that the file order is random.
    data_seed : int >= 0
        Seed of the bound-set draw.
    delta, delta_mc : float in (0, 1)
        Confidence budgets of the PAC-Bayes step and of the Monte-Carlo step;
        δ + δ′ < 1 and 1 − 2δ − δ′ must stay positive.
    sigma : float > 0, optional
        Posterior σ fixed in advance. Without it σ is searched on ``sigma_grid`` (default
        ``measurement.DEFAULT_SIGMA_GRID``) and ln(grid size) is charged. With both, ``sigma``
        must be on the grid and the grid is charged.
    sigma_grid : tuple of float > 0, optional
        Grid of σ fixed in advance (stored sorted, without repeats).
    sigma_prior : float > 0, optional
        Prior σ_p (default σ).
    per_tensor_scale : bool
        σ_l = σ · RMS of tensor l's prior centre.
    space : {"weight", "adapter"}
        Posterior family (adapter space needs a LoRA adapter). Never mixed.
    target_increase : float > 0
        σ search: the largest σ whose mean token NLL rises by at most this many nats...
    search_samples, search_examples : int >= 1
        ...with this many posterior samples per σ tried, on the first this-many examples.
    mc_samples : int >= 1, optional
        m, posterior samples of the Monte-Carlo step. Without it, m is the smallest number
        whose Monte-Carlo step kl⁻¹(q, ln(1/δ′)/m) − q costs at most ``mc_slack`` at the Gibbs
        risk q of ``mc_pilot`` pilot samples (drawn from an independent seed stream, so m does
        not depend on the certificate's own samples), capped at ``mc_max_samples``.
    mc_slack : float in (0, 1)
        Slack the Monte-Carlo step may add when m is chosen (default 0.02).
    mc_pilot, mc_max_samples : int >= 1
        Pilot samples, and the most samples m may take.
    mc_time_budget : float > 0, optional
        Seconds the Monte-Carlo step may take when m is chosen: m is also capped at this
        budget over the pilot's seconds per sample (the slack then paid is reported).
    loss : {"nll_clipped", "zero_one"}
    p_min : float in (0, 1)
        Probability floor of the clipped NLL: loss = −ln max(p, p_min) / ln(1/p_min).
    catoni_grid : tuple of float > 0, optional
        Values of Catoni's C fixed in advance (default ``pacbound.DEFAULT_CATONI_GRID``).
    batch_size : int >= 1
    seed : int >= 0
        Seed of the posterior samples (the σ search uses an independent stream).
    dtype, device : str
        Model precision (float32 by default on every device: the KL is computed from float32
        statistics and the noise is added in float32; bfloat16, float16, or auto = bf16 on a
        GPU) and device (auto, cpu, cuda[:i]).
    adapter_seed : int >= 0, optional
        Seed of the adapter's initialisation, to rebuild the adapter-space prior centre θ₀ when
        no initial adapter is saved (see :func:`measurement.adapter_prior_centre`).
    base_certificate : bool
        Also certify the base model itself (KL = 0, no Monte Carlo) on the same bound set.
    """

    n: int | None = config_field(None, minimum=1, help="Examples in the bound set (default all).")
    bound_set: str = config_field(
        "random",
        choices=BOUND_SET_DRAWS,
        help="Bound-set rows: drawn at random (--data-seed), or the first N (file order random).",
    )
    data_seed: int = config_field(0, minimum=0, help="Seed of the bound-set draw.")
    delta: float = config_field(
        0.05, interval=_UNIT_OPEN, help="Confidence budget of the PAC-Bayes step."
    )
    delta_mc: float = config_field(
        0.01, interval=_UNIT_OPEN, help="Confidence budget of the Monte-Carlo step."
    )
    sigma: float | None = config_field(
        None, interval=_POSITIVE, help="Posterior sigma fixed in advance (else searched)."
    )
    sigma_grid: tuple[float, ...] | None = config_field(
        None, interval=_POSITIVE, sequence=True, help="Sigma grid fixed in advance (charged)."
    )
    sigma_prior: float | None = config_field(
        None, interval=_POSITIVE, help="Prior sigma (default: sigma)."
    )
    per_tensor_scale: bool = config_field(
        False, boolean=True, help="sigma x RMS of each tensor's prior centre."
    )
    space: str = config_field("weight", choices=SPACES, help="Posterior family.")
    target_increase: float = config_field(
        0.1, interval=_POSITIVE, help="Sigma search: allowed NLL increase (nats)."
    )
    search_samples: int = config_field(
        3, minimum=1, help="Sigma search: posterior samples per sigma."
    )
    search_examples: int = config_field(64, minimum=1, help="Sigma search: examples used.")
    mc_samples: int | None = config_field(
        None, minimum=1, help="Posterior samples m (default: enough for --mc-slack)."
    )
    mc_slack: float = config_field(
        0.02, interval=_UNIT_OPEN, help="Most the Monte-Carlo step may add when m is chosen."
    )
    mc_pilot: int = config_field(10, minimum=1, help="Pilot samples that choose m.")
    mc_max_samples: int = config_field(10_000, minimum=1, help="Most posterior samples m.")
    mc_time_budget: float | None = config_field(
        None,
        interval=_POSITIVE,
        help="Seconds the Monte-Carlo step may take when m is chosen (default no limit).",
    )
    loss: str = config_field("nll_clipped", choices=RISK_LOSSES, help="Loss in [0, 1].")
    p_min: float = config_field(
        1e-4, interval=_UNIT_OPEN, help="Probability floor of the clipped NLL."
    )
    catoni_grid: tuple[float, ...] | None = config_field(
        None, interval=_POSITIVE, sequence=True, help="Catoni C values fixed in advance."
    )
    batch_size: int = config_field(8, minimum=1, help="Examples per batch.")
    seed: int = config_field(0, minimum=0, help="Seed of the posterior samples.")
    dtype: str = config_field(
        "float32",
        help="Model precision (float32: that of the KL; auto = bf16 on a GPU).",
    )
    device: str = config_field("auto", help="auto, cpu or cuda[:i].")
    adapter_seed: int | None = config_field(
        None, minimum=0, help="Seed of the adapter's initialisation (adapter-space prior centre)."
    )
    base_certificate: bool = config_field(
        True, boolean=True, help="Also certify the base model (KL = 0) on the same rows."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.delta + self.delta_mc >= 1:
            raise InvalidParameterError(
                "`delta` + `delta_mc` must be < 1 (each bound holds with probability "
                f"1 - delta - delta_mc); got delta={self.delta}, delta_mc={self.delta_mc}."
            )
        if 2 * self.delta + self.delta_mc >= 1:
            raise InvalidParameterError(
                "`delta` and `delta_mc` must leave a positive confidence 1 - 2*delta - delta_mc; "
                f"got delta={self.delta}, delta_mc={self.delta_mc}."
            )
        if self.sigma_grid is not None:
            object.__setattr__(self, "sigma_grid", tuple(sorted(set(self.sigma_grid))))
            if self.sigma is not None and not any(
                math.isclose(self.sigma, s, rel_tol=1e-9) for s in self.sigma_grid
            ):
                raise InvalidParameterError(
                    f"`sigma` must be one of the sigma grid fixed in advance "
                    f"{list(self.sigma_grid)}; got {self.sigma!r}."
                )
