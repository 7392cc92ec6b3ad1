r"""The tradeoff model: a PAC-Bayes generalization gap plus an extrapolation gap plus an offset.

Let :math:`r = L_{test} - L_{train}` be a run's gap, :math:`d` its training difficulty and
:math:`n` its budget. The fitted model is

.. math::

    r(d, n) = A\,G(K(d), n) + B\,T(d) + E,

linear in the amplitudes :math:`(A, B, E)` (:math:`A, B \ge 0`) and nonlinear in a few shape
parameters. With :math:`x = d/d_{ref}` (power families) or :math:`x = d - d_{ref}` (exponential
families), :math:`d_{ref}` the smallest observed difficulty:

- complexity :math:`K(d)`: ``power`` :math:`x^{g}`, ``exp`` :math:`e^{a x}`, or measured per run
  (``kl`` in nats, or ``sq_dist``, the squared distance to the base weights);
- gap :math:`G`: ``mcallester`` :math:`\sqrt{K/2}\,n^{-\nu}` (with a measured KL in nats,
  :math:`\sqrt{(KL + \ln(2\sqrt n/\delta))/2}\,n^{-\nu}`, Maurer's constant);
  ``mcallester_exact`` the bound's own form with its confidence term,
  :math:`\sqrt{(kK + \ln(2\sqrt n/\delta))/2}\,n^{-\nu}`, where the KL scale :math:`k` is a
  shape parameter separate from the amplitude :math:`A` (the bound's constant, 1 in theory); ``kl``
  :math:`\mathrm{kl}^{-1}(q, (kK + \ln(2\sqrt n/\delta))/n^{2\nu}) - q`; ``catoni``
  :math:`(1 - e^{-Cq - (kK + \ln(1/\delta))/n^{2\nu}})/(1 - e^{-C}) - q`, with :math:`q` the
  training risk and :math:`k` a fitted KL scale (1 for a measured KL);
- extrapolation :math:`T(d)`: ``power`` :math:`x^{-b}` or ``exp`` :math:`e^{-b x}`;
- rate: ``sqrt`` fixes :math:`\nu = 1/2` (the theory); ``free`` fits :math:`\nu` (does its interval
  cover 1/2?).

In the McAllester form with a parametric K only the product :math:`c\sqrt{k}` of the bound's
constant and the KL scale is identifiable (the :math:`\ln(2\sqrt n/\delta)` term is neglected
against the KL); it is the amplitude :math:`A`. The kl and Catoni forms are nonlinear in K, so
the KL scale :math:`k` is a shape parameter there.

Closed-form :math:`d^*(n)` (McAllester form, K and T from the same family, training loss flat
in d): power, :math:`d^* = d_{ref}\,(2\sqrt2\,bB\,n^{\nu}/(gA))^{1/(g/2+b)}`; exponential,
:math:`d^* = d_{ref} + \ln(2\sqrt2\,bB\,n^{\nu}/(aA))/(a/2+b)`. For :math:`\nu = 1/2` these are
the closed forms of :func:`pacbound.derive_tradeoff`, :math:`d^* \propto n^{1/(g+2b)}` and
:math:`d^* = [\ln n + 2\ln(\cdot)]/(a+2b)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fits.exceptions import InsufficientDataError
from fits.model._cells import FitData
from fits.model._choices import COMPLEXITIES, EXTRAPS, GAPS, RATES
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_choice, check_in_interval

__all__ = ["ModelSpec", "TradeoffModel"]

AMPLITUDES = ("A", "B", "E")
GRID_POINTS = {1: 81, 2: 41, 3: 17, 4: 11}

PARAM_DOC = {
    "A": "gap amplitude (c*sqrt(k) in the McAllester form with a parametric K)",
    "B": "extrapolation amplitude at d_ref",
    "E": "offset",
    "g": "complexity exponent: K ~ (d/d_ref)^g",
    "a": "complexity rate: K ~ exp(a (d - d_ref))",
    "k": "KL scale (nats at d_ref, or per unit of squared distance)",
    "nu": "budget exponent of the gap: n^-nu (theory: 1/2)",
    "b": "extrapolation exponent (power) or rate (exp)",
}


@dataclass(frozen=True)
class ModelSpec:
    """Which tradeoff model to fit.

    Attributes
    ----------
    complexity : {"power", "exp", "kl", "sq_dist"}
        K(d): parametric (power or exponential in d) or measured per run (column ``kl`` in nats
        or ``sq_dist``).
    extrap : {"power", "exp"}
        T(d), the extrapolation term.
    gap : {"mcallester", "kl", "catoni"}
        The form of the generalization gap.
    rate : {"sqrt", "free"}
        ``sqrt`` fixes the gap's budget dependence at n^-1/2; ``free`` fits n^-nu.
    delta : float
        The bound's confidence parameter (enters the log terms).
    catoni_C : float
        Catoni's C, fixed in advance.
    """

    complexity: str = "power"
    extrap: str = "power"
    gap: str = "mcallester"
    rate: str = "sqrt"
    delta: float = 0.05
    catoni_C: float = 1.0

    def __post_init__(self) -> None:
        check_choice(self.complexity, "complexity", COMPLEXITIES)
        check_choice(self.extrap, "extrap", EXTRAPS)
        check_choice(self.gap, "gap", GAPS)
        check_choice(self.rate, "rate", RATES)
        check_in_interval(self.delta, "delta", 0.0, 1.0, closed="neither", allow_nan=False)
        check_in_interval(self.catoni_C, "catoni_C", 0.0, closed="neither", allow_nan=False)

    @classmethod
    def parse(cls, text: str, **options: Any) -> ModelSpec:
        """Parse ``"<K>[,<T>][:<gap>]"``, e.g. ``"power"``, ``"power,exp"``, ``"kl,power"``,
        ``"power:mcallester_exact"``.

        A parametric K alone also sets T to the same family; a measured K defaults T to power.
        A ``:<gap>`` suffix sets the gap's form (it wins over a ``gap`` option).
        """
        text, _, gap = str(text).partition(":")
        if gap.strip():
            options = {**options, "gap": gap.strip()}
        parts = [p.strip() for p in str(text).split(",") if p.strip()]
        if not 1 <= len(parts) <= 2 or parts[0] not in COMPLEXITIES:
            raise InvalidParameterError(
                f"`model` must be '<K>[,<T>]' with K in {list(COMPLEXITIES)} and T in "
                f"{list(EXTRAPS)}, e.g. 'power' or 'kl,exp'; got {text!r}."
            )
        extrap = parts[1] if len(parts) == 2 else (parts[0] if parts[0] in EXTRAPS else "power")
        if extrap not in EXTRAPS:
            raise InvalidParameterError(
                f"`model` extrapolation term must be one of {list(EXTRAPS)}; got {extrap!r}."
            )
        return cls(complexity=parts[0], extrap=extrap, **options)

    @property
    def label(self) -> str:
        """A one-line description, e.g. ``mcallester gap, K=power, T=power, n^-1/2``."""
        rate = "n^-1/2" if self.rate == "sqrt" else "n^-nu"
        return f"{self.gap} gap, K={self.complexity}, T={self.extrap}, {rate}"

    @property
    def measured(self) -> str | None:
        """The runs column used as measured complexity, or None."""
        return self.complexity if self.complexity in ("kl", "sq_dist") else None

    @property
    def uses_train_risk(self) -> bool:
        """Whether the gap needs the training risk q (the kl and Catoni forms)."""
        return self.gap in ("kl", "catoni")

    @property
    def fits_kl_scale(self) -> bool:
        """Whether the KL scale k is a fitted shape parameter (the gap is nonlinear in K)."""
        nonlinear = self.uses_train_risk or self.gap == "mcallester_exact"
        return nonlinear and self.complexity != "kl"

    def to_dict(self) -> dict[str, Any]:
        return {
            "complexity": self.complexity,
            "extrap": self.extrap,
            "gap": self.gap,
            "rate": self.rate,
            "delta": self.delta,
            "catoni_C": self.catoni_C,
            "label": self.label,
        }


@dataclass(frozen=True)
class TradeoffModel:
    """A :class:`ModelSpec` bound to the data's scale: reference difficulty and parameter bounds.

    Shape parameters are all positive and handled internally as ``theta = log(value)``.

    Attributes
    ----------
    spec : ModelSpec
    d_ref : float
        Reference difficulty (the smallest observed).
    d_range : tuple of float
        Observed difficulty range, where d* is searched.
    shape_names : tuple of str
    bounds : dict of str to (float, float)
        Natural-scale bounds of each shape parameter.
    """

    spec: ModelSpec
    d_ref: float
    d_range: tuple[float, float]
    shape_names: tuple[str, ...]
    bounds: dict[str, tuple[float, float]] = field(hash=False)

    # ----------------------------------------------------------------- construction
    @classmethod
    def for_data(
        cls, spec: ModelSpec, data: FitData, bounds: Mapping[str, tuple[float, float]] | None = None
    ) -> TradeoffModel:
        """Bind ``spec`` to ``data``: check the data suit the forms and set default bounds."""
        d_lo, d_hi = float(data.d_levels[0]), float(data.d_levels[-1])
        if d_hi <= d_lo:
            raise InsufficientDataError(
                f"the fit needs two or more distinct difficulties; got only d = {d_lo:g}."
            )
        uses_power = spec.extrap == "power" or spec.complexity == "power"
        if uses_power and d_lo <= 0:
            raise InsufficientDataError(
                f"`difficulty` must be > 0 for power-law terms; got {d_lo:g}. Use exponential "
                "terms (model 'exp') or shift the difficulty scale."
            )
        if spec.uses_train_risk:
            q = data.cells["train_mean"].to_numpy()
            if ((q < 0) | (q > 1)).any():
                raise InsufficientDataError(
                    f"the {spec.gap} gap needs a training risk in [0, 1]; got a training "
                    f"{data.target} of {q[(q < 0) | (q > 1)][0]:.4g}. Use target 'error' or the "
                    "'mcallester' gap."
                )
        if spec.measured is not None:
            K = data.cells["K_mean"].to_numpy()
            if not np.isfinite(K).all() or (K <= 0).any():
                raise InsufficientDataError(
                    f"`{spec.measured}` must be measured and > 0 for every run to use it as K."
                )
        span = d_hi - d_lo
        n_lo, n_hi = float(data.n_levels[0]), float(data.n_levels[-1])
        default: dict[str, tuple[float, float]] = {}
        if spec.complexity == "power":
            default["g"] = (0.05, 8.0)
        elif spec.complexity == "exp":
            default["a"] = (0.02 / span, 12.0 / span)
        if spec.fits_kl_scale:
            if spec.complexity == "sq_dist":
                K = data.cells["K_mean"].to_numpy()
                default["k"] = (1e-4 * n_lo / K.max(), 1e2 * n_hi / K.min())
            else:
                default["k"] = (1e-4 * n_lo, 1e2 * n_hi)
        if spec.rate == "free":
            default["nu"] = (0.02, 3.0)
        default["b"] = (0.02, 8.0) if spec.extrap == "power" else (0.02 / span, 12.0 / span)
        chosen = dict(default)
        for name, pair in (bounds or {}).items():
            if name not in default:
                raise InvalidParameterError(
                    f"`bounds` must name shape parameters of this model {sorted(default)}; got {name!r}."
                )
            lo, hi = (float(pair[0]), float(pair[1]))
            if not (0 < lo < hi and math.isfinite(hi)):
                raise InvalidParameterError(
                    f"`bounds[{name!r}]` must satisfy 0 < low < high; got {pair!r}."
                )
            chosen[name] = (lo, hi)
        return cls(spec, d_lo, (d_lo, d_hi), tuple(default), chosen)

    # ----------------------------------------------------------------- parameters
    @property
    def n_shape(self) -> int:
        return len(self.shape_names)

    @property
    def param_names(self) -> tuple[str, ...]:
        return (*self.shape_names, *AMPLITUDES)

    @property
    def nonneg(self) -> NDArray[np.bool_]:
        return np.array([True, True, False])

    @property
    def lo(self) -> NDArray[np.float64]:
        return np.log([self.bounds[k][0] for k in self.shape_names])

    @property
    def hi(self) -> NDArray[np.float64]:
        return np.log([self.bounds[k][1] for k in self.shape_names])

    def grid(self, points: int | None = None) -> list[NDArray[np.float64]]:
        """Axes of the shape grid (internal log scale), bounds included."""
        pts = points or GRID_POINTS.get(self.n_shape, 9)
        return [np.linspace(lo, hi, pts) for lo, hi in zip(self.lo, self.hi, strict=True)]

    def params_dict(
        self, theta: NDArray[np.float64], amps: NDArray[np.float64]
    ) -> dict[str, float]:
        """Natural-scale parameter dict from internal ``theta`` and amplitudes (one fit)."""
        vals = [*np.exp(np.asarray(theta, float)), *np.asarray(amps, float)]
        return {k: float(v) for k, v in zip(self.param_names, vals, strict=True)}

    def split(
        self, params: Mapping[str, float] | NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Internal ``(theta, amps)`` from a parameter dict or a (..., P) array."""
        if isinstance(params, Mapping):
            arr = np.array([params[k] for k in self.param_names], dtype=float)
        else:
            arr = np.asarray(params, dtype=float)
        s = self.n_shape
        return np.log(arr[..., :s]), arr[..., s:]

    # ----------------------------------------------------------------- the model
    def _shape(self, theta: NDArray[np.float64], name: str) -> NDArray[np.float64]:
        return np.exp(theta[..., self.shape_names.index(name)])[..., None]

    def _x(self, family: str, d: NDArray[np.float64]) -> NDArray[np.float64]:
        """The family's argument: ln(d/d_ref) for power laws (x^s = e^(s ln x)), d - d_ref else."""
        return np.log(d / self.d_ref) if family == "power" else d - self.d_ref

    def columns(
        self,
        theta: NDArray[np.float64],
        d: NDArray[np.float64],
        n: NDArray[np.float64],
        q: NDArray[np.float64] | None = None,
        K: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]:
        """Design matrix ``[G, T, 1]`` of shape (B, P, 3) for shapes ``theta`` (B, s).

        ``d``, ``n`` (the points), ``q`` (training risk) and ``K`` (measured complexity) are
        (P,) or (B, P).
        """
        G, T = self.gap_and_extrap(theta, d, n, q, K)
        return np.stack([G, T, np.ones(G.shape)], axis=-1)

    def gap_and_extrap(
        self,
        theta: NDArray[np.float64],
        d: NDArray[np.float64],
        n: NDArray[np.float64],
        q: NDArray[np.float64] | None = None,
        K: NDArray[np.float64] | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The columns G (gap) and T (extrapolation), each (B, P); see :meth:`columns`."""
        spec = self.spec
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        d = np.asarray(d, dtype=float)
        n = np.asarray(n, dtype=float)
        d = d[None, :] if d.ndim == 1 else d
        n = n[None, :] if n.ndim == 1 else n
        B, P = theta.shape[0], d.shape[-1]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if spec.rate == "free":
                n_pow = np.exp(-self._shape(theta, "nu") * np.log(n))
            else:
                n_pow = 1.0 / np.sqrt(n)
            if spec.complexity in ("power", "exp"):  # K = x^g = e^(g ln x), or e^(a x)
                base = None
                rate = self._shape(theta, "g" if spec.complexity == "power" else "a")
                x = self._x(spec.complexity, d)
                if spec.gap == "mcallester":  # sqrt(K / 2), computed as one exponential
                    G = np.sqrt(0.5) * np.exp(0.5 * rate * x) * n_pow
                else:
                    base = np.exp(rate * x)
            else:
                base = np.broadcast_to(np.asarray(K, dtype=float), (B, P))
                if spec.gap == "mcallester":
                    if spec.complexity == "kl":
                        base = base + np.log(2.0 * np.sqrt(n) / spec.delta)
                    G = np.sqrt(base / 2.0) * n_pow
            if spec.gap == "mcallester_exact":
                k = 1.0 if spec.complexity == "kl" else self._shape(theta, "k")
                G = np.sqrt((k * base + np.log(2.0 * np.sqrt(n) / spec.delta)) / 2.0) * n_pow
            elif spec.gap != "mcallester":
                k = 1.0 if spec.complexity == "kl" else self._shape(theta, "k")
                kl = k * base
                n_eff = 1.0 / (n_pow * n_pow)
                qq = np.broadcast_to(np.clip(np.asarray(q, dtype=float), 0.0, 1.0), (B, P))
                if spec.gap == "kl":
                    from pacbound import kl_inv_upper

                    c = (kl + np.log(2.0 * np.sqrt(n) / spec.delta)) / n_eff
                    G = np.asarray(kl_inv_upper(qq, np.broadcast_to(c, (B, P))), dtype=float) - qq
                else:
                    C = spec.catoni_C
                    expo = -C * qq - (kl + np.log(1.0 / spec.delta)) / n_eff
                    G = np.expm1(expo) / math.expm1(-C) - qq
            T = np.exp(-self._shape(theta, "b") * self._x(spec.extrap, d))
        return np.broadcast_to(G, (B, P)), np.broadcast_to(T, (B, P))

    def predict(
        self,
        theta: NDArray[np.float64],
        amps: NDArray[np.float64],
        d: NDArray[np.float64],
        n: NDArray[np.float64],
        q: NDArray[np.float64] | None = None,
        K: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]:
        """Predicted gap r at points (d, n): shape (B, P)."""
        G, T = self.gap_and_extrap(theta, d, n, q, K)
        amps = np.atleast_2d(amps)
        return G * amps[:, 0:1] + T * amps[:, 1:2] + amps[:, 2:3]

    # ----------------------------------------------------------------- closed form d*
    @property
    def has_closed_form(self) -> bool:
        """True when d*(n) has a closed form (McAllester, K and T of the same family)."""
        s = self.spec
        return (
            s.gap == "mcallester" and s.complexity == s.extrap and s.complexity in ("power", "exp")
        )

    def closed_form_dstar(
        self, theta: NDArray[np.float64], amps: NDArray[np.float64], n: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Unconstrained stationary point d*(n), shape (B, len(n)); +inf/-inf when A or B is 0."""
        if not self.has_closed_form:
            raise InvalidParameterError(f"`model` {self.spec.label!r} has no closed-form d*(n).")
        theta = np.atleast_2d(theta)
        amps = np.atleast_2d(amps)
        A, B = amps[:, 0:1], amps[:, 1:2]
        b = self._shape(theta, "b")
        nu = self._shape(theta, "nu") if self.spec.rate == "free" else 0.5
        n = np.asarray(n, dtype=float)[None, :]
        power = self.spec.complexity == "power"
        rate = self._shape(theta, "g" if power else "a")  # g (power) or a (exp)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = 2.0 * math.sqrt(2.0) * b * B * n**nu / (rate * A)
            if power:
                out = self.d_ref * ratio ** (1.0 / (rate / 2.0 + b))
            else:
                out = self.d_ref + np.log(ratio) / (rate / 2.0 + b)
        out = np.where(A <= 0, np.inf, out)
        return np.where((B <= 0) & (A > 0), -np.inf, out)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.spec.to_dict(),
            "d_ref": self.d_ref,
            "d_range": list(self.d_range),
            "shape_names": list(self.shape_names),
            "param_names": list(self.param_names),
            "bounds": {k: list(v) for k, v in self.bounds.items()},
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> TradeoffModel:
        spec = ModelSpec(
            **{k: obj[k] for k in ("complexity", "extrap", "gap", "rate", "delta", "catoni_C")}
        )
        return cls(
            spec,
            float(obj["d_ref"]),
            (float(obj["d_range"][0]), float(obj["d_range"][1])),
            tuple(obj["shape_names"]),
            {k: (float(v[0]), float(v[1])) for k, v in obj["bounds"].items()},
        )
