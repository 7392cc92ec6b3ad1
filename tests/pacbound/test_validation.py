"""Validation helpers (pacbound.support._validation): integer arrays and broadcasting."""

from __future__ import annotations

import numpy as np
import pytest

from pacbound.exceptions import InvalidParameterError
from pacbound.support._validation import check_broadcast, check_integer_array


def test_check_integer_array():
    out = check_integer_array([1, 2.0, 3], "n")
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0, 3.0]
    assert check_integer_array(0, "k", 0) == 0.0
    for bad, shown in ((0, "0.0"), (1.5, "1.5"), (np.inf, "inf"), (np.nan, "nan")):
        with pytest.raises(
            InvalidParameterError, match=rf"^`n` must be an integer >= 1; got {shown}\.$"
        ):
            check_integer_array([2, bad], "n")


def test_check_broadcast():
    assert check_broadcast(a=np.zeros((2, 1)), b=np.zeros(3), c=1.0) == (2, 3)
    with pytest.raises(
        InvalidParameterError,
        match=r"^`a`, `b` and `c` must broadcast together; got shapes \(2,\), \(3,\), \(\)\.$",
    ):
        check_broadcast(a=[1, 2], b=[1, 2, 3], c=0.5)
    with pytest.raises(
        InvalidParameterError, match=r"^`x` and `y` must broadcast together; got shapes"
    ):
        check_broadcast(x=np.zeros(2), y=np.zeros(4))
