"""Shared fixtures of the fits tests (keep small: one small fitted result, reused read-only)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_fit():
    """A fitted tradeoff on simulated runs (5 difficulties x 4 budgets x 3 seeds), 100 refits."""
    from fits import fit_tradeoff
    from tests.fits._sim import simulate_runs

    return fit_tradeoff(simulate_runs(0), n_resamples=100, cv_resamples=20, seed=0)


# --- fresh sweeps, the synthetic task and the demo (fits.sweep, fits.synthetic) -------------


@pytest.fixture(scope="session")
def sweep_env(tmp_path_factory):
    """One torch thread and a private sft-tradeoff cache folder for the sweep tests.

    On a shared 2-core machine two torch threads per process are often ten times slower than
    one; the private cache keeps the tests from writing to the user's cache (the shipped
    synthetic base is read from the package).
    """
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SFT_TRADEOFF_CACHE", str(tmp_path_factory.mktemp("sft-tradeoff-cache")))
        mp.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(old)
