"""kl-inverse on torch tensors with exact implicit gradients, so a bound can be a training loss.

Importing this module imports torch; :mod:`pacbound` itself never does (this module loads only
when :func:`torch_kl_inv_upper` or :func:`torch_kl_inv_lower` is first touched).

The forward pass is :func:`pacbound.kl_inv_upper` / :func:`pacbound.kl_inv_lower` (conservative,
float64, on CPU; the result returns to the input's device). The backward pass differentiates
:math:`\\mathrm{kl}(q\\|p) = c` implicitly (Reeb et al. 2018, arXiv:1810.12263):

.. math::

    \\frac{\\partial p}{\\partial c} = \\frac{p(1-p)}{p-q}, \\qquad
    \\frac{\\partial p}{\\partial q} = \\frac{p(1-p)}{p-q}
    \\left[\\ln\\frac{1-q}{1-p} - \\ln\\frac{q}{p}\\right],

written with ``log1p`` of non-negative arguments so that it stays accurate when
:math:`p \\to q` (small :math:`c`), where :math:`\\partial p/\\partial q \\to 1` and
:math:`\\partial p / \\partial c \\to \\infty` like :math:`\\sqrt{q(1-q)/(2c)}`. At the edges the
limits are used: where :math:`p` is 0 or 1 (saturated) both derivatives are 0; at
:math:`c = 0` exactly, :math:`\\partial p/\\partial q = 1` and
:math:`\\partial p/\\partial c = \\pm\\infty`. The closed forms at :math:`q \\in \\{0, 1\\}`
(:math:`1 - e^{-c}`, :math:`e^{-c}`) need no special case: the general formula gives
:math:`\\partial p/\\partial c = 1 - p` and :math:`-p` there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pacbound._kl_inverse import kl_inv_lower, kl_inv_upper

__all__ = ["torch_kl_inv_lower", "torch_kl_inv_upper"]


def _implicit_grads(
    q: torch.Tensor, c: torch.Tensor, p: torch.Tensor, *, lower: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dp/dq, dp/dc) at the solution p of kl(q||p) = c, with the edge limits."""
    d = (q - p) if lower else (p - q)
    pq = p * (1.0 - p)
    safe_d = torch.where(d > 0, d, torch.ones_like(d))
    if lower:  # ln((1-q)/(1-p)) - ln(q/p) = -[log1p(d/(1-q)) + log1p(d/p)]
        bracket = torch.log1p(d / (1.0 - q)) + torch.log1p(d / p)
        dp_dc = -pq / safe_d
    else:  # = log1p(d/(1-p)) + log1p(d/q)
        bracket = torch.log1p(d / (1.0 - p)) + torch.log1p(d / q)
        dp_dc = pq / safe_d
    dp_dq = (pq / safe_d) * bracket
    interior = (d > 0) & (pq > 0)
    # c = 0 exactly: p = q; dp/dq = 1, dp/dc = +-inf (square-root singularity)
    at_zero = (d == 0) & (pq > 0)
    inf = torch.full_like(p, float("inf"))
    dp_dc = torch.where(interior, dp_dc, torch.where(at_zero, -inf if lower else inf, dp_dc))
    dp_dq = torch.where(interior, dp_dq, torch.where(at_zero, torch.ones_like(p), dp_dq))
    # saturated: p is 0 or 1, constant in both arguments
    flat = pq == 0
    zero = torch.zeros_like(p)
    dp_dc = torch.where(flat, zero, dp_dc)
    dp_dq = torch.where(flat, zero, dp_dq)
    return dp_dq, dp_dc


class _KLInverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, c: torch.Tensor, lower: bool) -> torch.Tensor:  # type: ignore[override]
        solve = kl_inv_lower if lower else kl_inv_upper
        values = solve(q.detach().cpu().numpy(), c.detach().cpu().numpy())
        p = torch.as_tensor(np.asarray(values, dtype=np.float64), device=q.device)
        ctx.lower = lower
        ctx.save_for_backward(q, c, p)
        return p

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        q, c, p = ctx.saved_tensors
        dp_dq, dp_dc = _implicit_grads(q, c, p, lower=ctx.lower)
        grad_q = grad * dp_dq if ctx.needs_input_grad[0] else None
        grad_c = grad * dp_dc if ctx.needs_input_grad[1] else None
        return grad_q, grad_c, None


def _prepare(q: Any, c: Any) -> tuple[torch.Tensor, torch.Tensor]:
    # numbers and arrays become float64 tensors directly (never via torch's float32 default)
    q_t = q if isinstance(q, torch.Tensor) else torch.as_tensor(np.asarray(q, dtype=np.float64))
    c_t = c if isinstance(c, torch.Tensor) else torch.as_tensor(np.asarray(c, dtype=np.float64))
    q_t = q_t.to(torch.float64)
    c_t = c_t.to(device=q_t.device, dtype=torch.float64)
    q_b, c_b = torch.broadcast_tensors(q_t, c_t)
    return q_b, c_b


def torch_kl_inv_upper(q: Any, c: Any) -> torch.Tensor:
    r"""Upper kl-inverse :math:`\sup\{p : \mathrm{kl}(q\|p) \le c\}` on tensors, differentiable.

    Let :math:`q` and :math:`c` represent ``q`` and ``c``. The value is that of
    :func:`pacbound.kl_inv_upper` (conservative: never below the exact inverse); gradients with
    respect to both arguments are the exact implicit derivatives (module notes).

    Parameters
    ----------
    q : torch.Tensor or array_like
        Empirical risk in [0, 1].
    c : torch.Tensor or array_like
        Budget >= 0, e.g. ``(kl + math.log(2 * math.sqrt(n) / delta)) / n`` built from a
        differentiable KL. Broadcasts with ``q``.

    Returns
    -------
    torch.Tensor
        float64, on ``q``'s device, of the broadcast shape.

    Raises
    ------
    InvalidParameterError
        If ``q`` lies outside [0, 1] or ``c`` is negative.

    Examples
    --------
    >>> import torch
    >>> from pacbound import torch_kl_inv_upper
    >>> c = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    >>> p = torch_kl_inv_upper(torch.tensor(0.1, dtype=torch.float64), c)
    >>> p.backward()
    >>> round(float(c.grad), 6)
    1.42943
    """
    q_b, c_b = _prepare(q, c)
    return _KLInverse.apply(q_b, c_b, False)


def torch_kl_inv_lower(q: Any, c: Any) -> torch.Tensor:
    r"""Lower kl-inverse :math:`\inf\{p : \mathrm{kl}(q\|p) \le c\}` on tensors, differentiable.

    The value is that of :func:`pacbound.kl_inv_lower` (never above the exact inverse);
    gradients are the implicit derivatives of :math:`\mathrm{kl}(q\|p) = c` on the lower branch.

    Parameters
    ----------
    q : torch.Tensor or array_like
        Empirical risk in [0, 1].
    c : torch.Tensor or array_like
        Budget >= 0. Broadcasts with ``q``.

    Returns
    -------
    torch.Tensor
        float64, on ``q``'s device, of the broadcast shape.
    """
    q_b, c_b = _prepare(q, c)
    return _KLInverse.apply(q_b, c_b, True)
