"""Difficulty as a distribution over operation counts, and the exact TV distance between two.

Two families of training distributions ``D_train(d)`` over ``k = 1 .. max_ops``:

- **bins** (the paper's design): uniform over the op counts ``lo .. hi`` of one interval;
- **Gaussian mixtures** centred at ``d`` (with width ``w = 1.5``, the design under which the
  shift of d* with n first appeared in our CPU prototypes of this task):

  .. math:: p_d(k) \\propto \\exp\\left(-\\frac{(k - d)^2}{2 w^2}\\right),
            \\quad k \\in \\{1, \\dots, K\\},

  so every mixture keeps some easy and some hard problems and moves smoothly with ``d``.

Problems given their op count are drawn the same way for training and test, so the TV
distance between the two data distributions equals the TV distance between their op-count
marginals, known exactly:

.. math:: \\mathrm{TV}(D_{test}, D_{train}(d)) = \\tfrac12 \\sum_k |p_{test}(k) - p_d(k)|.

With a loss bounded by ``M`` the extrapolation gap is at most ``M * TV``:
``|E_test ℓ − E_train ℓ| ≤ M · TV(D_test, D_train(d))`` for any ``ℓ`` with values in ``[0, M]``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_positive_int

__all__ = [
    "OpsDistribution",
    "ops_bin",
    "ops_mixture",
    "stable_seed",
    "tv_distance",
    "uniform_ops",
]


def stable_seed(*parts: object) -> int:
    """A 63-bit integer seed derived from ``parts`` (stable across processes and versions)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class OpsDistribution:
    """A probability distribution over operation counts ``1 .. max_ops``.

    Attributes
    ----------
    label : str
        Short name used in run folders and tables (``"ops3-4"``, ``"mix4"``, ``"uniform1-8"``).
    difficulty : float
        Its numeric difficulty: the mixture centre ``d``, or a bin's mean op count.
    probs : tuple of float
        ``probs[k - 1] = P(ops = k)``; sums to 1.
    kind : str
        ``"bin"``, ``"mixture"`` or ``"uniform"``.
    """

    label: str
    difficulty: float
    probs: tuple[float, ...]
    kind: str

    @property
    def max_ops(self) -> int:
        return len(self.probs)

    @property
    def support(self) -> list[int]:
        """Op counts with positive probability."""
        return [k + 1 for k, p in enumerate(self.probs) if p > 0]

    def mean(self) -> float:
        """Expected op count."""
        return float(np.dot(np.arange(1, self.max_ops + 1), self.probs))

    def sample_ops(self, n: int, seed: int) -> np.ndarray:
        """Draw ``n`` op counts i.i.d.; the first ``m`` draws do not depend on ``n``.

        Inverse-CDF sampling from one uniform stream, so training subsets of growing size are
        nested prefixes of one pool.
        """
        n = check_positive_int(n, "n", minimum=0)
        u = np.random.default_rng([int(seed), stable_seed("ops", self.label)]).random(n)
        cdf = np.cumsum(self.probs)
        cdf[-1] = 1.0
        return np.searchsorted(cdf, u, side="right").astype(np.int64) + 1

    def tv(self, other: OpsDistribution) -> float:
        """Exact total-variation distance to ``other`` (same ``max_ops``)."""
        return tv_distance(self.probs, other.probs)

    def __str__(self) -> str:
        shown = " ".join(f"{p:.3f}" for p in self.probs)
        return (
            f"{self.label} ({self.kind}, d={self.difficulty:g}): P(k=1..{self.max_ops}) = {shown}"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "difficulty": self.difficulty,
            "probs": list(self.probs),
            "kind": self.kind,
        }


def tv_distance(p, q) -> float:
    """Total variation ``½ Σ |p_k − q_k|`` between two probability vectors (float64)."""
    a = np.asarray(p, dtype=np.float64)
    b = np.asarray(q, dtype=np.float64)
    if a.shape != b.shape:
        raise InvalidParameterError(
            f"`p` and `q` must have the same length; got {a.shape[0]} and {b.shape[0]}."
        )
    return float(0.5 * np.abs(a - b).sum())


def _check_range(lo: int, hi: int, max_ops: int, name: str) -> tuple[int, int]:
    lo = check_positive_int(lo, f"{name} lower end")
    hi = check_positive_int(hi, f"{name} upper end")
    if not lo <= hi <= max_ops:
        raise InvalidParameterError(
            f"`{name}` must satisfy 1 <= lo <= hi <= max_ops = {max_ops}; got {lo}-{hi}."
        )
    return lo, hi


def ops_bin(lo: int, hi: int, max_ops: int = 8) -> OpsDistribution:
    """Uniform over op counts ``lo .. hi`` (a difficulty bin of the paper's kind)."""
    lo, hi = _check_range(lo, hi, max_ops, "bin")
    probs = [1.0 / (hi - lo + 1) if lo <= k <= hi else 0.0 for k in range(1, max_ops + 1)]
    label = f"ops{lo}" if lo == hi else f"ops{lo}-{hi}"
    return OpsDistribution(label, (lo + hi) / 2.0, tuple(probs), "bin")


def uniform_ops(lo: int, hi: int, max_ops: int = 8) -> OpsDistribution:
    """Uniform over ``lo .. hi``: the test distribution of the decomposed evaluation."""
    d = ops_bin(lo, hi, max_ops)
    return OpsDistribution(f"uniform{lo}-{hi}", d.difficulty, d.probs, "uniform")


def ops_mixture(center: float, width: float = 1.5, max_ops: int = 8) -> OpsDistribution:
    """Discretised Gaussian over ``1 .. max_ops`` centred at ``center`` with scale ``width``.

    ``p(k) ∝ exp(−(k − center)² / (2 width²))``; every op count keeps positive mass.
    """
    max_ops = check_positive_int(max_ops, "max_ops")
    if not (math.isfinite(float(center)) and 1 <= float(center) <= max_ops):
        raise InvalidParameterError(
            f"`center` must be in [1, max_ops = {max_ops}]; got {center!r}."
        )
    if not (math.isfinite(float(width)) and float(width) > 0):
        raise InvalidParameterError(f"`width` must be a positive number; got {width!r}.")
    k = np.arange(1, max_ops + 1, dtype=np.float64)
    w = np.exp(-((k - float(center)) ** 2) / (2.0 * float(width) ** 2))
    probs = w / w.sum()
    label = f"mix{float(center):g}"
    return OpsDistribution(label, float(center), tuple(float(p) for p in probs), "mixture")
