"""The settings of :func:`fits.fit_tradeoff`, declared once: :class:`FitConfig`.

Light on purpose (numpy only), so that ``tradeoff fit --help`` builds its options from these
declarations without importing pandas or scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fits.estimate._choices import BOOTSTRAP_METHODS, LOSSES
from fits.model._choices import GAPS, RATES, TARGETS, TRAIN_MODELS, WEIGHTINGS
from pacbound.exceptions import InvalidParameterError
from pacbound.support import Config, Interval, config_field

__all__ = ["TRAIN_MODELS", "FitConfig"]

_POSITIVE = Interval(0.0, math.inf, "neither")
_UNIT_OPEN = Interval(0.0, 1.0, "neither")


@dataclass(frozen=True)
class FitConfig(Config):
    """How :func:`fit_tradeoff` fits: the model, the objective, the intervals, the checks.

    Every field's allowed values are declared once, in its ``metadata`` (``help``,
    ``choices``, ``interval``, ``minimum``); ``__post_init__`` checks them and ``tradeoff fit``
    builds its options (flag ``--<field>``, help, choices) from the same declaration.

    Attributes
    ----------
    model : str
        ``"<K>[,<T>][:<gap>]"`` with K in {power, exp, kl, sq_dist} and T in {power, exp}; see
        :class:`fits.ModelSpec`. Several families separated by ``;`` (e.g.
        ``"power;exp;power:mcallester_exact"``) are each fitted, compared on AICc, and d*(n) is
        averaged over them with a bootstrap whose refits choose the family each time; the
        result's main fit is the family with the lowest AICc. A :class:`~fits.ModelSpec` is accepted and stored as its
        text, with its gap, rate, delta and Catoni C.
    gap : {"mcallester", "mcallester_exact", "kl", "catoni"}, optional
        The form of the generalization gap (default McAllester; ``mcallester_exact`` keeps the
        bound's confidence term ln(2 sqrt(n)/delta) inside the root and fits the KL scale).
    rate : {"sqrt", "free"}, optional
        ``free`` fits the budget exponent nu of n^-nu instead of fixing it at 1/2.
    delta : float in (0, 1), optional
        The bound's delta in the log terms (default 0.05).
    catoni_c : float > 0
        Catoni's C, fixed in advance (``gap="catoni"``).
    loss : {"linear", "soft_l1", "huber"}
        Robust losses use ``f_scale`` (default 1.4826 * MAD of the linear fit's residuals).
    f_scale : float > 0, optional
    target : {"loss", "error"}
        Fit cross-entropy losses, or 0-1 errors ``1 - accuracy`` (the paper's metric).
    weights : {"auto", "inverse-variance", "none"}
    train_model : {"linear", "interpolate", "flat"}
        How the training metric enters d* (predicted test = training surface + fitted gap):
        ``linear`` a weighted line in d per budget (smooth: noise in the cell means does not
        pin d* to observed difficulties), ``interpolate`` piecewise linear through the cell
        means, ``flat`` the per-budget mean (d* is then the theory's minimiser of gap +
        extrapolation, in closed form where one exists).
    bounds : mapping, optional
        Natural-scale bounds of shape parameters, e.g. ``{"b": (0.01, 10)}``.
    grid : int >= 2, optional
        Grid points per shape parameter (default 81/41/17/11 for 1/2/3/4 shapes).
    exclude : tuple of str
        Run ids to leave out (recorded).
    n_resamples : int
        Bootstrap refits: 0 for none, else >= 2.
    bootstrap : {"auto", "seeds", "wild"}
        ``auto`` resamples seeds within cells when every cell has two or more, else wild.
    confidence_level : float in (0, 1)
    cv : bool
        Leave-one-budget-out and forward-chaining validation (three or more budgets).
    cv_resamples : int
        Bootstrap refits per cross-validation fold (for the held-out d* interval).
    baselines : bool
        Fit the baselines and compare AICc.
    seed : int >= 0, optional
        Seed of the bootstrap and cross-validation draws (None: fresh entropy).
    max_bins : int
        A budget with more distinct difficulties than this (a continuous difficulty) is
        quantile-binned into this many cells within the budget; each cell sits at the mean
        difficulty of its runs, and the binning is recorded. 0 turns binning off.
    lack_of_fit_alpha : float in (0, 1)
        Level of the pure-error lack-of-fit test (default 0.01): at p below it the summary says
        that the theory's form does not describe the runs and that d*(n) is the model's.
    """

    model: Any = config_field(
        "power",
        help="K[,T][:GAP]: K in power|exp|kl|sq_dist, T in power|exp; several families "
        "separated by ';' are compared on AICc and d*(n) is averaged over them.",
    )
    gap: str | None = config_field(
        None, choices=GAPS, help="Form of the generalization gap (default mcallester)."
    )
    rate: str | None = config_field(
        None, choices=RATES, help="sqrt (n^-1/2, the theory) or free (fit n^-nu); default sqrt."
    )
    delta: float | None = config_field(
        None, interval=_UNIT_OPEN, help="The bound's delta in the log terms (default 0.05)."
    )
    catoni_c: float = config_field(
        1.0, interval=_POSITIVE, help="Catoni's C, fixed in advance (gap catoni)."
    )
    loss: str = config_field(
        "linear", choices=LOSSES, help="Fit loss (robust ones take f_scale from the MAD)."
    )
    f_scale: float | None = config_field(
        None, interval=_POSITIVE, help="Inlier scale of a robust loss."
    )
    target: str = config_field(
        "loss", choices=TARGETS, help="Metric fitted: loss, or error (1 - accuracy)."
    )
    weights: str = config_field("auto", choices=WEIGHTINGS, help="Weights of the (d, n) cells.")
    train_model: str = config_field(
        "linear", choices=TRAIN_MODELS, help="How the training metric enters d*."
    )
    bounds: Mapping[str, tuple[float, float]] | None = config_field(
        None, help="Natural-scale bounds of shape parameters, NAME -> (LOW, HIGH)."
    )
    grid: int | None = config_field(
        None, minimum=2, help="Grid points per shape parameter (default by shape count)."
    )
    exclude: tuple[str, ...] = config_field(
        (), sequence=True, help="Run ids to leave out (recorded)."
    )
    max_bins: int = config_field(
        12,
        minimum=2,
        also=(0,),
        help="Most difficulty bins per budget when the difficulty is continuous (0: never bin).",
    )
    n_resamples: int = config_field(1000, minimum=2, also=(0,), help="Bootstrap refits (0: none).")
    bootstrap: str = config_field(
        "auto", choices=BOOTSTRAP_METHODS, help="Bootstrap: auto (seeds if every cell has 2+)."
    )
    confidence_level: float = config_field(
        0.95, interval=_UNIT_OPEN, help="Confidence level of the intervals."
    )
    cv: bool = config_field(True, boolean=True, help="Cross-validate over budgets.")
    cv_resamples: int = config_field(
        200, minimum=2, also=(0,), help="Bootstrap refits per cross-validation fold."
    )
    baselines: bool = config_field(True, boolean=True, help="Fit the baselines (AICc).")
    seed: int | None = config_field(
        0, minimum=0, nullable=True, help="Seed of the bootstrap and cross-validation draws."
    )
    lack_of_fit_alpha: float = config_field(
        0.01,
        interval=_UNIT_OPEN,
        help="Level of the lack-of-fit test: below it the theory's form is rejected by the runs.",
    )

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) and hasattr(self.model, "complexity"):
            spec = self.model
            for name, value in (
                ("model", f"{spec.complexity},{spec.extrap}"),
                ("gap", self.gap or spec.gap),
                ("rate", self.rate or spec.rate),
                ("delta", spec.delta if self.delta is None else self.delta),
                ("catoni_c", spec.catoni_C if self.catoni_c == 1.0 else self.catoni_c),
            ):
                object.__setattr__(self, name, value)
        if not isinstance(self.model, str):
            raise InvalidParameterError(
                f"`model` must be '<K>[,<T>]' or a ModelSpec; got {self.model!r}."
            )
        super().__post_init__()
        if self.bounds is not None:
            bounds = {}
            for key, pair in dict(self.bounds).items():
                try:
                    lo, hi = (float(v) for v in pair)
                except (TypeError, ValueError):
                    raise InvalidParameterError(
                        f"`bounds` must map names to (low, high) pairs; got {key}={pair!r}."
                    ) from None
                bounds[str(key)] = (lo, hi)
            object.__setattr__(self, "bounds", bounds)
        if not self.families:
            raise InvalidParameterError(f"`model` must name a model family; got {self.model!r}.")
        self.specs()  # every family, with gap, rate and delta, must parse

    @property
    def families(self) -> list[str]:
        """The model families named by ``model`` (several are separated by ``;``)."""
        return [part.strip() for part in self.model.split(";") if part.strip()]

    def spec(self, family: str | None = None) -> Any:
        """The :class:`~fits.ModelSpec` of ``family`` (default: the first one named)."""
        from fits.model._families import ModelSpec

        overrides = {
            k: v for k, v in (("gap", self.gap), ("rate", self.rate), ("delta", self.delta)) if v
        }
        text = self.families[0] if family is None else family
        return ModelSpec.parse(text, catoni_C=self.catoni_c, **overrides)

    def specs(self) -> list[tuple[str, Any]]:
        """``(family, ModelSpec)`` for every family named by ``model``."""
        return [(family, self.spec(family)) for family in self.families]
