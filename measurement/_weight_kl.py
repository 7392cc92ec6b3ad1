"""From weight statistics to KL(Q‖P), and to a full PAC-Bayes bound through ``pacbound``.

Let group l (one row of the statistics table) hold n_l weights whose squared distance to the
prior centre is S_l. With a posterior Q = N(w_ft, σ_q,l² I) and a prior P = N(w_base, σ_p,l² I)
on that group, and ρ_l = σ_q,l² / σ_p,l²,

.. math::

    \\mathrm{KL}(Q\\|P) = \\sum_l \\Big[ \\frac{n_l}{2}(\\rho_l - 1 - \\ln \\rho_l)
                         + \\frac{S_l}{2\\sigma_{p,l}^2} \\Big],

evaluated by :func:`pacbound.gaussian_kl_grouped` in float64. *Isotropic*: σ_q,l = ``sigma``
and σ_p,l = ``sigma_prior`` (default ``sigma``, so KL = ‖Δ‖²/(2σ²)). *Per-tensor scale*:
σ_q,l = ``sigma`` · RMS_l and σ_p,l = ``sigma_prior`` · RMS_l with RMS_l = √(Σw_base²/n_l), the
root mean square of the base tensor. Rows of a vocabulary resize (kind ``new_rows``) are
compared with a prior centre of 0 and take the RMS of their base tensor.

A σ picked after seeing the data is paid for: with a grid of k values fixed in advance, each
bound is taken at confidence δ/k (``union={"sigma grid": k}`` in ``pacbound``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from measurement._stats import WeightStats
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_choice, check_in_interval, to_jsonable

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "KLResult",
    "WeightBoundResult",
    "gaussian_kl",
    "per_tensor_scales",
    "weight_bound",
]

BOUND_NAMES = ("kl", "mcallester", "catoni")


@dataclass(frozen=True)
class KLResult:
    """KL(Q‖P) between Gaussians around the fine-tuned and the base weights.

    Attributes
    ----------
    kl : float
        Total KL in nats.
    sq_dist : float
        Σ S_l: squared L2 distance between posterior and prior centres (weight space:
        ‖w_ft − w_base‖², adapter deltas included; adapter space: ‖θ − θ₀‖²).
    numel : int
        Dimension of the posterior (weights covered).
    space : {"weight", "adapter"}
        Posterior family: Gaussians over all the model's weights, or over the adapter's own
        parameters (A, B, ...) around their data-free initialisation; never mixed.
    sigma, sigma_prior : float
        σ_q and σ_p (absolute, or relative to each tensor's RMS with ``per_tensor_scale``).
    per_tensor_scale : bool
        Whether σ scales with each base tensor's RMS.
    notes : tuple of str
        Choices made on the way (e.g. the RMS used for tensors whose base RMS is 0).
    per_tensor : pandas.DataFrame
        name, layer, module, kind, numel, sq_delta, sigma_q, sigma_p, kl.
    per_layer, per_module, per_kind : pandas.DataFrame
        Sums of numel, sq_delta and kl by layer (NA: outside the blocks), module kind and row
        kind.
    """

    kl: float
    sq_dist: float
    numel: int
    space: str
    sigma: float
    sigma_prior: float
    per_tensor_scale: bool
    notes: tuple[str, ...] = ()
    per_tensor: pd.DataFrame = field(repr=False, default=None)
    per_layer: pd.DataFrame = field(repr=False, default=None)
    per_module: pd.DataFrame = field(repr=False, default=None)
    per_kind: pd.DataFrame = field(repr=False, default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: totals, settings and the per-layer/module/kind lists."""

        def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                to_jsonable(r) for r in df.astype(object).where(df.notna(), None).to_dict("records")
            ]

        return {
            "kl": self.kl,
            "sq_dist": self.sq_dist,
            "numel": self.numel,
            "space": self.space,
            "sigma": self.sigma,
            "sigma_prior": self.sigma_prior,
            "per_tensor_scale": self.per_tensor_scale,
            "notes": list(self.notes),
            "per_layer": rows(self.per_layer),
            "per_module": rows(self.per_module),
            "per_kind": rows(self.per_kind),
        }

    def __str__(self) -> str:
        scale = " x RMS(base tensor)" if self.per_tensor_scale else ""
        lines = [
            f"KL(Q||P) = {self.kl:.6g} nats ({self.space} space, {self.numel:,} parameters)",
            f"  sigma_q = {self.sigma:g}{scale}, sigma_p = {self.sigma_prior:g}{scale}",
            f"  squared distance = {self.sq_dist:.6g}",
            "  by module: "
            + ", ".join(f"{r.module} {r.kl:.4g}" for r in self.per_module.itertuples()),
            *(f"  note: {n}" for n in self.notes),
        ]
        return "\n".join(lines)


def _kl_terms(
    numel: np.ndarray, sq: np.ndarray, var_q: np.ndarray, var_p: np.ndarray
) -> np.ndarray:
    """Per-group KL terms, from :func:`pacbound.gaussian_kl_grouped` (float64)."""
    import pacbound

    terms = pacbound.gaussian_kl_grouped(numel, sq, var_q, var_p, per_group=True)
    return np.asarray(terms, dtype=np.float64).reshape(numel.shape)


def _table(stats: WeightStats, space: str) -> pd.DataFrame:
    check_choice(space, "space", ("weight", "adapter"))
    if space == "adapter":
        if stats.adapter_table is None:
            raise InvalidParameterError(
                "`space` must be 'weight' for a full fine-tune (adapter space needs statistics "
                "measured from a LoRA adapter); got 'adapter'."
            )
        return stats.adapter_table
    return stats.table


def _rms(table: pd.DataFrame) -> np.ndarray:
    """RMS of the base tensor of each row (new rows take their tensor's common-rows RMS)."""
    full = table[table["kind"] != "new_rows"]
    rms_by_name = dict(
        zip(
            full["name"],
            np.sqrt(full["sq_base"].to_numpy(float) / full["numel"].to_numpy(float)),
            strict=True,
        )
    )
    return np.array(
        [
            rms_by_name.get(n, math.nan) if k == "new_rows" else math.sqrt(sb / m) if m else 0.0
            for n, k, sb, m in zip(
                table["name"], table["kind"], table["sq_base"], table["numel"], strict=True
            )
        ],
        dtype=np.float64,
    )


def _scales(
    table: pd.DataFrame, rms: np.ndarray, moved: np.ndarray, rms_floor: float | None
) -> tuple[np.ndarray, list[str]]:
    """Per-row scale factor RMS_l for ``per_tensor_scale``, with the zero-RMS fallback."""
    known = np.isfinite(rms) & (rms > 0)
    if rms_floor is not None:
        floor = float(
            check_in_interval(
                rms_floor, "rms_floor", 0.0, math.inf, closed="neither", allow_nan=False
            )
        )
        return np.maximum(np.where(np.isfinite(rms), rms, 0.0), floor), [
            f"sigma scales with max(RMS of the base tensor, {floor:g})"
        ]
    base_rows = (table["kind"] != "new_rows").to_numpy() & table["sq_base"].notna().to_numpy()
    total_sq = float(table["sq_base"][base_rows].sum())
    total_n = float(table["numel"][base_rows].sum())
    fallback = math.sqrt(total_sq / total_n) if total_n > 0 and total_sq > 0 else math.nan
    zero = moved & ~known
    if zero.any() and not math.isfinite(fallback):
        raise InvalidParameterError(
            "`per_tensor_scale` needs a non-zero prior-centre RMS for every tensor that moved; "
            f"`{table['name'][zero].iloc[0]}` has RMS 0 and so does the whole prior centre "
            "(use an isotropic sigma, or rms_floor)."
        )
    notes = []
    if zero.any():
        notes.append(
            f"{int(zero.sum())} moved tensors have base RMS 0 (e.g. "
            f"`{table['name'][zero].iloc[0]}`): they use the RMS of all base weights, {fallback:.4g}"
        )
    # unmoved rows contribute (n/2)(ρ − 1 − ln ρ), which does not depend on the scale
    return np.where(known, rms, fallback if math.isfinite(fallback) else 1.0), notes


def per_tensor_scales(
    table: pd.DataFrame, *, rms_floor: float | None = None
) -> tuple[dict[str, float], list[str]]:
    r"""The scale :math:`s_l` of each tensor's σ under ``per_tensor_scale``: one table for KL and sampler.

    With ``per_tensor_scale`` the posterior and the prior of tensor :math:`l` have standard
    deviation :math:`\sigma s_l`, where :math:`s_l = \mathrm{RMS}_l` is the root mean square of the
    prior centre of the tensor (rows of a vocabulary resize take the RMS of the tensor's common
    rows), :math:`s_l = \max(\mathrm{RMS}_l, \text{rms\_floor})` with ``rms_floor``, and a tensor
    whose centre has RMS 0 (a bias initialised at zero) takes the RMS of all prior-centre weights.
    :func:`gaussian_kl` charges this :math:`\sigma s_l` and the Monte-Carlo sampler of
    :mod:`measurement` draws with it, so the sampled posterior is the one whose KL is reported.

    Parameters
    ----------
    table : DataFrame
        A statistics table (``WeightStats.table`` or ``.adapter_table``).
    rms_floor : float, optional
        Lower bound on :math:`s_l`.

    Returns
    -------
    scales : dict of str to float
        :math:`s_l` by tensor name (the table's ``name`` column).
    notes : list of str
        What fallbacks were used, for the output.
    """
    sq = table["sq_delta"].to_numpy(np.float64)
    rms = _rms(table)
    row_scales, notes = _scales(table, rms, np.nan_to_num(sq) > 0, rms_floor)
    scales: dict[str, float] = {}
    for name, value in zip(table["name"], row_scales, strict=True):
        if name in scales and not math.isclose(scales[name], float(value), rel_tol=1e-12):
            raise InvalidParameterError(
                f"`table` gives tensor `{name}` two scales ({scales[name]!r} and {float(value)!r}); "
                "its rows must share one prior-centre RMS."
            )
        scales[str(name)] = float(value)
    return scales, notes


def gaussian_kl(
    stats: WeightStats,
    *,
    sigma: float,
    sigma_prior: float | None = None,
    per_tensor_scale: bool = False,
    space: str = "weight",
    rms_floor: float | None = None,
) -> KLResult:
    """KL(Q‖P) for Gaussian posterior and prior centred at the fine-tuned and base weights.

    Let σ, σ_p represent ``sigma``, ``sigma_prior``. See the module docstring for the formula.

    Parameters
    ----------
    stats : WeightStats
        From :func:`measurement.weight_statistics` (or ``WeightStats.load``).
    sigma : float
        Posterior standard deviation σ_q (> 0); relative to each tensor's RMS with
        ``per_tensor_scale``.
    sigma_prior : float, optional
        Prior standard deviation σ_p (> 0); defaults to ``sigma`` (KL = ‖Δ‖²/(2σ²)).
    per_tensor_scale : bool, default: False
        σ_l = σ · RMS(base tensor l). Needs ``sq_base`` for every row that moved (for
        adapters, measure with ``base_norms=True``).
    space : {"weight", "adapter"}, default: ``"weight"``
        Posterior family: weights of the whole model, or the adapter's own parameters.
    rms_floor : float, optional
        With ``per_tensor_scale``: σ_l = σ · max(RMS_l, ``rms_floor``). By default a tensor
        whose base RMS is 0 (zero-initialised biases) uses the RMS of all base weights
        instead, and the result's ``notes`` say so; both choices depend on the base alone.

    Returns
    -------
    KLResult

    Examples
    --------
    >>> stats = weight_statistics("base/", "finetuned/")           # doctest: +SKIP
    >>> gaussian_kl(stats, sigma=1e-3).kl                          # doctest: +SKIP
    """
    import pandas as pd

    sigma = float(
        check_in_interval(sigma, "sigma", 0.0, math.inf, closed="neither", allow_nan=False)
    )
    sigma_prior = (
        sigma
        if sigma_prior is None
        else float(
            check_in_interval(
                sigma_prior, "sigma_prior", 0.0, math.inf, closed="neither", allow_nan=False
            )
        )
    )
    table = _table(stats, space)
    numel = table["numel"].to_numpy(np.float64)
    sq = table["sq_delta"].to_numpy(np.float64)
    if not np.all(np.isfinite(sq)):
        bad = table["name"][~np.isfinite(sq)].iloc[0]
        raise InvalidParameterError(f"`stats` must have finite sq_delta; row `{bad}` has none.")
    if per_tensor_scale:
        rms = _rms(table)
        moved = sq > 0
        missing = moved & ~np.isfinite(rms)
        if missing.any():
            raise InvalidParameterError(
                "`per_tensor_scale` needs the base RMS of every tensor that moved; "
                f"{int(missing.sum())} rows (e.g. `{table['name'][missing].iloc[0]}`) have no "
                "sq_base (LoRA rows measured from the adapter alone: rerun weight_statistics "
                "with base_norms=True / `--base-norms`)."
            )
        scales, notes = per_tensor_scales(table, rms_floor=rms_floor)
        scale = table["name"].astype(str).map(scales).to_numpy(np.float64)
    else:
        scale, notes = np.ones_like(numel), []
    var_q = (sigma * scale) ** 2
    var_p = (sigma_prior * scale) ** 2
    kl = _kl_terms(numel, sq, var_q, var_p)
    per = pd.DataFrame(
        {
            "name": table["name"],
            "layer": table["layer"],
            "module": table["module"],
            "kind": table["kind"],
            "numel": table["numel"],
            "sq_delta": sq,
            "sigma_q": np.sqrt(var_q),
            "sigma_p": np.sqrt(var_p),
            "kl": kl,
        }
    )

    def group(by: str) -> pd.DataFrame:
        g = per.groupby(by, dropna=False, sort=True)[["numel", "sq_delta", "kl"]].sum()
        return g.reset_index()

    return KLResult(
        kl=float(np.sum(kl)),
        sq_dist=float(np.sum(sq)),
        numel=int(np.sum(numel)),
        space=space,
        sigma=sigma,
        sigma_prior=sigma_prior,
        per_tensor_scale=bool(per_tensor_scale),
        notes=tuple(notes),
        per_tensor=per,
        per_layer=group("layer"),
        per_module=group("module"),
        per_kind=group("kind"),
    )


@dataclass(frozen=True)
class WeightBoundResult:
    """PAC-Bayes bounds on the Gibbs risk of Q, from the measured KL.

    Attributes
    ----------
    bounds : dict of str to pacbound.BoundResult
        ``kl`` (Langford–Seeger–Maurer), ``mcallester`` and ``catoni``; each holds with
        probability at least 1 − δ on its own (taking their minimum would need another
        union bound).
    sigma : dict of str to float
        The σ each bound used (the best of the grid when several were evaluated).
    kl : dict of str to KLResult
        The KL at that σ.
    grid : list of dict
        One entry per σ evaluated: sigma, kl, emp_risk and ``bounds`` (name -> value).
    sigma_grid : list of float or None
        The grid fixed in advance (its size is charged through ``union``).
    space : str
    """

    bounds: dict[str, Any]
    sigma: dict[str, float]
    kl: dict[str, KLResult]
    grid: list[dict[str, Any]]
    sigma_grid: list[float] | None
    space: str

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "space": self.space,
                "sigma_grid": self.sigma_grid,
                "bounds": {k: _bound_dict(b) for k, b in self.bounds.items()},
                "sigma": self.sigma,
                "kl": {k: v.kl for k, v in self.kl.items()},
                "grid": self.grid,
            }
        )

    def __str__(self) -> str:
        lines = [f"PAC-Bayes bounds ({self.space} space)"]
        for name, b in self.bounds.items():
            vacuous = "  vacuous (>= 1)" if float(b.value) >= 1 else ""
            lines.append(
                f"  {name:<10} R <= {float(b.value):.6g}  (sigma = {self.sigma[name]:g}, "
                f"KL = {self.kl[name].kl:.6g}){vacuous}"
            )
        if self.sigma_grid:
            lines.append(
                f"  sigma grid of {len(self.sigma_grid)} values fixed in advance (charged)"
            )
        return "\n".join(lines)


def _bound_dict(b: Any) -> Any:
    return b.to_dict() if hasattr(b, "to_dict") else to_jsonable(b)


def weight_bound(
    stats: WeightStats,
    *,
    emp_risk: float | Sequence[float],
    n: int,
    delta: float,
    sigma: float | None = None,
    sigma_prior: float | None = None,
    per_tensor_scale: bool = False,
    sigma_grid: Sequence[float] | None = None,
    space: str = "weight",
    bounds: Sequence[str] = BOUND_NAMES,
    rms_floor: float | None = None,
) -> WeightBoundResult:
    """PAC-Bayes bounds from the weight KL: kl-inverse, McAllester and Catoni (``pacbound``).

    Parameters
    ----------
    stats : WeightStats
    emp_risk : float or sequence of float
        Empirical (Gibbs) risk in [0, 1] under Q, on the n examples. One value per σ when
        ``sigma`` is None and a grid is given (the Gibbs risk depends on σ).
    n : int
        Number of examples behind ``emp_risk``.
    delta : float
        Confidence parameter in (0, 1).
    sigma : float, optional
        The σ used. With ``sigma_grid`` it must be one of the grid values.
    sigma_prior, per_tensor_scale, space, rms_floor
        As in :func:`gaussian_kl`.
    sigma_grid : sequence of float, optional
        σ values fixed before seeing the data; the bound pays ln(k) through
        ``union={"sigma grid": k}``.
    bounds : sequence of {"kl", "mcallester", "catoni"}

    Returns
    -------
    WeightBoundResult
    """
    import pacbound

    funcs = {"kl": pacbound.kl_bound, "mcallester": pacbound.mcallester, "catoni": pacbound.catoni}
    for b in bounds:
        check_choice(b, "bounds", BOUND_NAMES)
    grid = None if sigma_grid is None else [float(s) for s in sigma_grid]
    if grid is not None:
        if not grid:
            raise InvalidParameterError("`sigma_grid` must hold at least one value; got [].")
        for s in grid:
            check_in_interval(s, "sigma_grid", 0.0, math.inf, closed="neither", allow_nan=False)
    risks = np.atleast_1d(np.asarray(emp_risk, dtype=np.float64))
    if sigma is not None:
        if grid is not None and not any(math.isclose(sigma, s, rel_tol=1e-9) for s in grid):
            raise InvalidParameterError(
                f"`sigma` must be one of the sigma grid fixed in advance {grid}; got {sigma!r}."
            )
        if risks.size != 1:
            raise InvalidParameterError(
                f"`emp_risk` must be one number for one sigma; got {risks.size} values."
            )
        candidates = [float(sigma)]
    else:
        if grid is None:
            raise InvalidParameterError("`sigma` must be given (or a `sigma_grid`); got None.")
        if risks.size != len(grid):
            raise InvalidParameterError(
                f"`emp_risk` must have one value per sigma in the grid (the Gibbs risk depends "
                f"on sigma); got {risks.size} values for {len(grid)} sigmas."
            )
        candidates = grid
    if risks.size == 1:
        risks = np.repeat(risks, len(candidates))
    union = None if grid is None or len(grid) == 1 else {"sigma grid": len(grid)}
    rows: list[dict[str, Any]] = []
    best: dict[str, tuple[Any, float, KLResult]] = {}
    for s, q in zip(candidates, risks, strict=True):
        klr = gaussian_kl(
            stats,
            sigma=s,
            sigma_prior=sigma_prior,
            per_tensor_scale=per_tensor_scale,
            space=space,
            rms_floor=rms_floor,
        )
        entry: dict[str, Any] = {"sigma": s, "kl": klr.kl, "emp_risk": float(q), "bounds": {}}
        for name in bounds:
            res = funcs[name](float(q), klr.kl, n, delta, union=union)
            entry["bounds"][name] = float(res.value)
            if name not in best or float(res.value) < float(best[name][0].value):
                best[name] = (res, s, klr)
        rows.append(entry)
    return WeightBoundResult(
        bounds={k: v[0] for k, v in best.items()},
        sigma={k: v[1] for k, v in best.items()},
        kl={k: v[2] for k, v in best.items()},
        grid=rows,
        sigma_grid=grid,
        space=space,
    )
