"""Several model families compared: :class:`ModelSelection` and its :class:`FamilyFit` rows.

Made by :func:`fits.analysis.fit_tradeoff` when ``model`` names several families (see
:mod:`fits.analysis._averaging` for the AICc weights and the family-choosing bootstrap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fits.estimate._interval import ConfidenceInterval

__all__ = ["FamilyFit", "ModelSelection"]


@dataclass(frozen=True)
class FamilyFit:
    """One family's fit to the runs.

    Attributes
    ----------
    label : str
        The family as the user wrote it (``power``, ``exp,power``, ``power:mcallester_exact``).
    form : str
        Its full description.
    aicc : float
        AICc on the shared likelihood (inf when refused).
    weight : float
        Akaike weight (0 when refused).
    refused : str
        Why the fit was refused (empty when accepted).
    d_star : tuple of float
        d*(n) at the observed budgets (empty when refused).
    chosen : float
        Share of bootstrap refits in which this family had the lowest AICc.
    intervals : tuple of ConfidenceInterval
        The family's own percentile intervals of d*(n) on the same resamples (empty without a
        bootstrap): beside the averaged ones, they show what choosing the family costs.
    """

    label: str
    form: str
    aicc: float
    weight: float
    refused: str
    d_star: tuple[float, ...]
    chosen: float
    intervals: tuple[ConfidenceInterval, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "form": self.form,
            "aicc": self.aicc if np.isfinite(self.aicc) else None,
            "weight": self.weight,
            "refused": self.refused,
            "d_star": list(self.d_star),
            "chosen": self.chosen,
            "intervals": [ci.to_dict() for ci in self.intervals],
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> FamilyFit:
        return cls(
            str(obj["label"]),
            str(obj["form"]),
            float("inf") if obj["aicc"] is None else float(obj["aicc"]),
            float(obj["weight"]),
            str(obj["refused"]),
            tuple(float(v) for v in obj["d_star"]),
            float(obj["chosen"]),
            tuple(ConfidenceInterval.from_dict(c) for c in obj.get("intervals", ())),
        )


@dataclass(frozen=True)
class ModelSelection:
    """Families compared on AICc, and d*(n) averaged over them.

    Attributes
    ----------
    families : tuple of FamilyFit
    budgets : tuple of float
    averaged : tuple of float
        :math:`\\sum_k w_k d^*_k(n)` per budget.
    intervals : tuple of ConfidenceInterval or None
        Percentile intervals of the family-choosing bootstrap (None without a bootstrap).
    n_resamples : int
    """

    families: tuple[FamilyFit, ...]
    budgets: tuple[float, ...]
    averaged: tuple[float, ...]
    intervals: tuple[ConfidenceInterval | None, ...]
    n_resamples: int

    @property
    def best(self) -> FamilyFit:
        """The family with the lowest AICc."""
        return min(self.families, key=lambda f: f.aicc)

    def __str__(self) -> str:
        lines = ["model families (AICc weights; share of bootstrap refits choosing each):"]
        for f in sorted(self.families, key=lambda f: f.aicc):
            if f.refused:
                lines.append(f"  {f.label}: refused ({f.refused})")
                continue
            lines.append(
                f"  {f.label}: AICc {f.aicc:.6g}, weight {f.weight:.3f}, chosen in "
                f"{f.chosen:.0%} of refits; d*(n) = "
                + ", ".join(
                    f"{v:.3g}" + (f" [{ci.low:.3g}, {ci.high:.3g}]" if ci is not None else "")
                    for v, ci in zip(f.d_star, f.intervals or (None,) * len(f.d_star), strict=True)
                )
            )
        lines.append("model-averaged d*(n):")
        for n, v, ci in zip(self.budgets, self.averaged, self.intervals, strict=True):
            lines.append(f"  n={n:g}: {v:.4g}" + ("" if ci is None else f" {ci}"))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "families": [f.to_dict() for f in self.families],
            "budgets": list(self.budgets),
            "averaged": list(self.averaged),
            "intervals": [None if ci is None else ci.to_dict() for ci in self.intervals],
            "n_resamples": self.n_resamples,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ModelSelection:
        return cls(
            tuple(FamilyFit.from_dict(f) for f in obj["families"]),
            tuple(float(v) for v in obj["budgets"]),
            tuple(float(v) for v in obj["averaged"]),
            tuple(None if c is None else ConfidenceInterval.from_dict(c) for c in obj["intervals"]),
            int(obj["n_resamples"]),
        )
