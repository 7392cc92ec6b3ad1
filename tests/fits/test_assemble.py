"""The verdict on whether d* increases with n, stated with the numbers."""

from __future__ import annotations

from fits.estimate import ConfidenceInterval
from fits.results import DStarEstimate
from fits.results._assemble import verdict


def _d(n, v, lo=None, hi=None, br=True):
    return DStarEstimate(n, v, None if lo is None else ConfidenceInterval(lo, hi, 0.95), br)


def test_increases():
    code, text = verdict(
        (_d(64, 2.0, 1.8, 2.2), _d(4096, 5.0, 4.5, 5.6)),
        0.22,
        ConfidenceInterval(0.18, 0.26),
        0.99,
        "loss",
        0.95,
    )
    assert code == "increases"
    assert text.startswith(
        "d* increases with n: d* goes from 2 [1.8, 2.2] at n=64 to 5 [4.5, 5.6] at n=4096"
    )
    assert "0.22 [0.18, 0.26]" in text and "= 0.990" in text


def test_inconclusive_and_edges():
    code, text = verdict(
        (_d(64, 2.0, 1.0, 6.0, br=False), _d(4096, 3.0, 1.0, 6.0)), 0.1, None, 0.6, "error", 0.95
    )
    assert code == "inconclusive"
    assert "do not show d* changing with n at the 95% level" in text
    assert (
        "(edge, not bracketed)" in text and "At n = 64 the fitted optimum sits on the edge" in text
    )


def test_decreases_and_point_estimate_only():
    code, text = verdict(
        (_d(64, 5.0, 4.8, 5.2), _d(4096, 2.0, 1.9, 2.1)), -0.2, None, 0.0, "loss", 0.9
    )
    assert code == "decreases" and "against the theory" in text
    code, text = verdict((_d(64, 2.0), _d(4096, 3.0)), 0.1, None, None, "loss", 0.95)
    assert code == "point estimate only" and "no bootstrap" in text
