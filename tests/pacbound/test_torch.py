"""Tests of pacbound._torch: kl-inverse on tensors with implicit gradients (gradcheck), and
that importing pacbound does not import torch.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from pacbound import kl_bound, kl_inv_lower, kl_inv_upper, torch_kl_inv_lower, torch_kl_inv_upper
from pacbound.exceptions import InvalidParameterError

F64 = torch.float64


def test_importing_pacbound_does_not_import_torch() -> None:
    code = (
        "import sys, pacbound\n"
        "pacbound.kl_inv_upper(0.1, 0.05); pacbound.kl_bound(0.1, 10.0, 100, 0.05)\n"
        "pacbound.gaussian_kl_grouped(10, 1.0, 1.0, 1.0)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'sympy' not in sys.modules, 'sympy was imported'\n"
        "pacbound.torch_kl_inv_upper\n"
        "assert 'torch' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_forward_equals_numpy_and_keeps_device_and_dtype() -> None:
    q = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float32)  # float32 in, float64 out
    c = torch.tensor(0.05, dtype=F64)
    up, lo = torch_kl_inv_upper(q, c), torch_kl_inv_lower(q, c)
    assert up.dtype == F64 and up.device == q.device and up.shape == (3,)
    np.testing.assert_array_equal(up.numpy(), kl_inv_upper(q.double().numpy(), 0.05))
    np.testing.assert_array_equal(lo.numpy(), kl_inv_lower(q.double().numpy(), 0.05))
    assert torch_kl_inv_upper(0.1, 0.05).item() == kl_inv_upper(0.1, 0.05)


@pytest.mark.parametrize("solve", [torch_kl_inv_upper, torch_kl_inv_lower])
def test_gradcheck(solve) -> None:
    q = torch.tensor([0.1, 0.3, 0.7, 0.02, 0.5, 0.95], dtype=F64, requires_grad=True)
    c = torch.tensor([0.05, 0.2, 0.01, 0.001, 1.0, 1e-4], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(solve, (q, c), eps=1e-7, atol=1e-6, rtol=1e-5)


def test_gradcheck_with_broadcasting() -> None:
    q = torch.tensor([[0.1], [0.4]], dtype=F64, requires_grad=True)
    c = torch.tensor([0.01, 0.1, 0.5], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(torch_kl_inv_upper, (q, c), eps=1e-7, atol=1e-6, rtol=1e-5)


def test_implicit_gradients_match_formulas() -> None:
    q = torch.tensor(0.1, dtype=F64, requires_grad=True)
    c = torch.tensor(0.05, dtype=F64, requires_grad=True)
    p = torch_kl_inv_upper(q, c)
    p.backward()
    pv = p.item()
    dp_dc = pv * (1 - pv) / (pv - 0.1)
    dp_dq = dp_dc * (math.log(0.9 / (1 - pv)) - math.log(0.1 / pv))
    assert c.grad.item() == pytest.approx(dp_dc, rel=1e-12)
    assert q.grad.item() == pytest.approx(dp_dq, rel=1e-12)


def test_gradient_edges_are_finite_limits_or_documented() -> None:
    q = torch.tensor([0.0, 1.0, 0.3, 0.3, 0.999999], dtype=F64, requires_grad=True)
    c = torch.tensor([0.1, 0.1, 0.0, 800.0, 1e-3], dtype=F64, requires_grad=True)
    torch_kl_inv_upper(q, c).sum().backward()
    # q = 0: p = 1 - e^-c, dp/dc = e^-c; q = 1 and saturated p = 1: flat; c = 0: dp/dq = 1
    assert c.grad[0].item() == pytest.approx(math.exp(-0.1), rel=1e-12)
    assert q.grad[1].item() == 0.0 and c.grad[1].item() == 0.0
    assert q.grad[2].item() == 1.0 and c.grad[2].item() == math.inf
    assert q.grad[3].item() == 0.0 and c.grad[3].item() == 0.0
    assert not torch.isnan(q.grad).any() and not torch.isnan(c.grad).any()
    q.grad, c.grad = None, None
    torch_kl_inv_lower(q, c).sum().backward()
    assert c.grad[1].item() == pytest.approx(-math.exp(-0.1), rel=1e-12)  # q = 1: p = e^-c
    assert q.grad[0].item() == 0.0 and c.grad[0].item() == 0.0  # q = 0: p = 0
    assert not torch.isnan(c.grad).any()


def test_small_budget_gradient_is_the_square_root_singularity() -> None:
    # dp/dc ~ sqrt(q (1 - q) / (2 c)) as c -> 0; dp/dq -> 1
    for c0 in (1e-8, 1e-12):
        q = torch.tensor(0.3, dtype=F64, requires_grad=True)
        c = torch.tensor(c0, dtype=F64, requires_grad=True)
        torch_kl_inv_upper(q, c).backward()
        assert c.grad.item() == pytest.approx(math.sqrt(0.21 / (2 * c0)), rel=1e-3)
        assert q.grad.item() == pytest.approx(1.0, abs=1e-3)


def test_bound_as_a_training_objective() -> None:
    """Minimise the kl bound over a Gaussian posterior's scale by gradient descent."""
    n, delta, q_hat = 10000, 0.05, torch.tensor(0.1, dtype=F64)
    log_sigma = torch.tensor(-1.0, dtype=F64, requires_grad=True)
    optimiser = torch.optim.SGD([log_sigma], lr=10.0)
    values = []
    for _ in range(30):
        sigma2 = torch.exp(2 * log_sigma)
        kl = 0.5 * 100 * (sigma2 - 1 - torch.log(sigma2)) + 5.0  # KL to N(0, 1), 100 coords
        c = (kl + math.log(2 * math.sqrt(n) / delta)) / n
        bound = torch_kl_inv_upper(q_hat, c)
        values.append(bound.item())
        assert bound.item() == kl_bound(0.1, kl.item(), n, delta).value
        optimiser.zero_grad()
        bound.backward()
        optimiser.step()
    assert values[-1] < values[0] and values[-1] == pytest.approx(min(values), rel=1e-9)
    # the optimum is sigma = 1 (KL = 5), where the bound is the kl bound at KL = 5
    assert values[-1] == pytest.approx(kl_bound(0.1, 5.0, n, delta).value, rel=1e-6)


def test_invalid_input_raises_the_package_error() -> None:
    with pytest.raises(InvalidParameterError, match=r"^`q` must be in \[0, 1\]; got 1\.5\.$"):
        torch_kl_inv_upper(torch.tensor(1.5), 0.1)
    with pytest.raises(InvalidParameterError, match=r"^`c` must be in \[0, inf\]"):
        torch_kl_inv_lower(0.5, torch.tensor(-1.0))
