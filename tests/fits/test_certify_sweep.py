"""The learnt-prior split of a sweep cell (fits.experiments._certify_sweep)."""

from __future__ import annotations

import numpy as np
import pytest

from fits.experiments import split_rows
from fits.experiments._certify_sweep import _SubsetTask
from pacbound.exceptions import InvalidParameterError


def test_split_is_random_disjoint_complete_and_reproducible():
    prior, bound = split_rows(100, 0.5, seed=3)
    assert len(prior) == len(bound) == 50
    assert not set(prior) & set(bound)
    assert sorted([*prior, *bound]) == list(range(100))
    again, _ = split_rows(100, 0.5, seed=3)
    np.testing.assert_array_equal(prior, again)
    other, _ = split_rows(100, 0.5, seed=4)
    assert not np.array_equal(prior, other)
    assert not np.array_equal(prior, np.arange(50))  # not the first rows
    assert len(split_rows(10, 0.3, seed=0)[0]) == 3


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.01])
def test_bad_fraction_is_a_one_line_error(fraction):
    with pytest.raises(InvalidParameterError, match="prior_fraction"):
        split_rows(10, fraction, seed=0)


def test_subset_task_trains_on_the_prior_part_only():
    class Task:
        kind = "synthetic"

        def train_records(self, difficulty, n, seed):
            return list(range(n))

    sub = _SubsetTask(Task(), [3, 5])
    assert sub.train_records(None, 100, 0) == [3, 5]
    assert sub.kind == "synthetic"
