"""Tests of pacbound._kl_inverse_backend: which implementation runs, threads, fork safety."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from pacbound import kl_inv_lower, kl_inv_upper, kl_inverse_backend
from pacbound._kl_inverse_backend import (
    MIN_ELEMENTS_PER_THREAD,
    compiled_kernel,
    thread_count,
    use_numpy_backend,
)
from pacbound.exceptions import InvalidParameterError

needs_kernel = pytest.mark.skipif(
    compiled_kernel() is None, reason="the compiled kernel is not built"
)


def test_backend_description_and_forcing_numpy() -> None:
    expected = "compiled kernel" if compiled_kernel() is not None else "numpy"
    assert kl_inverse_backend().startswith(expected)
    with use_numpy_backend():
        assert compiled_kernel() is None
        assert kl_inverse_backend().startswith("numpy (array passes;")
    assert kl_inverse_backend().startswith(expected)  # restored on exit


def test_thread_count_follows_size_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PACBOUND_THREADS", raising=False)
    assert thread_count(10) == 1
    assert thread_count(2 * MIN_ELEMENTS_PER_THREAD - 1) == 1
    monkeypatch.setenv("PACBOUND_THREADS", "3")
    assert thread_count(10 * MIN_ELEMENTS_PER_THREAD) == 3
    assert thread_count(2 * MIN_ELEMENTS_PER_THREAD) == 2  # at most one per MIN elements
    assert thread_count(5) == 1


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_bad_thread_setting_is_named(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("PACBOUND_THREADS", raw)
    with pytest.raises(InvalidParameterError, match=f"PACBOUND_THREADS='{raw}'.*positive integer"):
        kl_inv_upper(np.full(10, 0.2), 0.1)


def _mixed_inputs(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    q = rng.uniform(0.0, 1.0, n)
    c = 10.0 ** rng.uniform(-6.0, 1.0, n)
    return q, c


@needs_kernel
@pytest.mark.parametrize("inverse", [kl_inv_upper, kl_inv_lower])
def test_threads_give_the_single_thread_result(monkeypatch: pytest.MonkeyPatch, inverse) -> None:
    n = 4 * MIN_ELEMENTS_PER_THREAD + 17
    q, c = _mixed_inputs(n)
    monkeypatch.setenv("PACBOUND_THREADS", "1")
    one = inverse(q, c)
    monkeypatch.setenv("PACBOUND_THREADS", "4")
    np.testing.assert_array_equal(inverse(q, c), one)
    # edges (here in the last thread's share) send only that share's rest to the masked path
    q[-5:] = [0.0, 1.0, np.nan, 0.5, 0.5]
    c[-5:] = [0.1, 0.1, 0.1, 0.0, np.inf]
    mixed = inverse(q, c)
    np.testing.assert_array_equal(mixed[:-5], one[:-5])
    with use_numpy_backend():
        edges = inverse(q[-5:], c[-5:])
    np.testing.assert_array_equal(mixed[-5:], edges)


@needs_kernel
def test_compiled_interior_reports_only_the_unwritten_ranges(monkeypatch) -> None:
    from pacbound._kl_inverse_backend import compiled_interior

    kernel = compiled_kernel()
    n = 4 * MIN_ELEMENTS_PER_THREAD
    q, c = _mixed_inputs(n)
    q[n // 4 + 300] = 0.0  # an edge in the second of four shares, in its second block
    out = np.empty(n)
    monkeypatch.setenv("PACBOUND_THREADS", "4")
    assert compiled_interior(kernel, q, c, out, lower=False) == [(n // 4 + 256, n // 2)]
    monkeypatch.setenv("PACBOUND_THREADS", "1")
    assert compiled_interior(kernel, q, c, out, lower=False) == [(n // 4 + 256, n)]
    q[n // 4 + 300] = 0.5
    assert compiled_interior(kernel, q, c, out, lower=False) == []


def _child_inverse(queue) -> None:
    q, c = _mixed_inputs(4 * MIN_ELEMENTS_PER_THREAD)
    queue.put(float(np.sum(kl_inv_upper(q, c))))


@needs_kernel
def test_forked_children_can_use_threads_after_the_parent_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No pool outlives a call, so a child forked after a threaded call does not deadlock
    # (the sweep runner forks).
    monkeypatch.setenv("PACBOUND_THREADS", "2")
    q, c = _mixed_inputs(4 * MIN_ELEMENTS_PER_THREAD)
    expected = float(np.sum(kl_inv_upper(q, c)))
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_inverse, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "the forked child hung or failed"
    assert queue.get(timeout=5) == expected
