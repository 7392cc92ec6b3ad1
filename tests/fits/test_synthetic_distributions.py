"""Difficulty distributions over op counts and their exact TV to the test distribution."""

from __future__ import annotations

import numpy as np
import pytest

from fits import ops_bin, ops_mixture, tv_distance, uniform_ops
from pacbound.exceptions import InvalidParameterError


def test_mixture_probabilities_and_tv_match_hand_computation():
    for d in (2.0, 4.0, 6.0, 8.0):
        m = ops_mixture(d, 1.5, 8)
        k = np.arange(1, 9)
        w = np.exp(-((k - d) ** 2) / (2 * 1.5**2))
        assert np.allclose(m.probs, w / w.sum(), rtol=0, atol=1e-15)
        expected_tv = 0.5 * np.abs(w / w.sum() - 1 / 8).sum()
        assert m.tv(uniform_ops(1, 8)) == pytest.approx(expected_tv, abs=1e-15)
        assert min(m.probs) > 0  # every mixture keeps some easy and some hard problems
    # exact TV to the uniform test distribution over 1-8 ops, 3 decimals
    tvs = [round(ops_mixture(d).tv(uniform_ops(1, 8)), 3) for d in (2, 4, 6, 8)]
    assert tvs == [0.447, 0.324, 0.349, 0.554]


def test_bins_are_uniform_and_tv_of_disjoint_bins():
    b = ops_bin(3, 4, 8)
    assert b.probs == (0, 0, 0.5, 0.5, 0, 0, 0, 0)
    assert b.difficulty == 3.5 and b.mean() == 3.5 and b.support == [3, 4]
    assert ops_bin(1, 2).tv(ops_bin(7, 8)) == 1.0
    assert tv_distance([0.5, 0.5], [1.0, 0.0]) == 0.5
    with pytest.raises(InvalidParameterError):
        tv_distance([1.0], [0.5, 0.5])


def test_sampling_is_nested_and_follows_the_distribution():
    m = ops_mixture(6.0)
    big = m.sample_ops(20000, seed=1)
    assert np.array_equal(m.sample_ops(100, seed=1), big[:100])
    freq = np.bincount(big, minlength=9)[1:] / big.size
    assert np.abs(freq - np.array(m.probs)).max() < 0.015
    assert not np.array_equal(m.sample_ops(100, seed=2), big[:100])
    assert set(ops_bin(3, 4).sample_ops(500, 0).tolist()) == {3, 4}


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ops_mixture(0.5), "`center` must be in"),
        (lambda: ops_mixture(3, width=0), "`width` must be a positive"),
        (lambda: ops_bin(4, 3), "`bin` must satisfy"),
        (lambda: ops_bin(1, 9, 8), "`bin` must satisfy"),
    ],
)
def test_invalid_distributions(call, match):
    with pytest.raises(InvalidParameterError, match=match):
        call()
