"""The factored LoRA norm (the merges are checked against peft in test_lora.py)."""

from __future__ import annotations

import pytest
import torch

from measurement import lora_sq_norm


def test_lora_sq_norm_trace_identity():
    gen = torch.Generator().manual_seed(0)
    A, B = torch.randn(16, 300, generator=gen), torch.randn(200, 16, generator=gen)
    dense = float(((B.double() @ A.double()) * 0.5).square().sum())
    assert lora_sq_norm(A, B, 0.5) == pytest.approx(dense, rel=1e-12)
    assert lora_sq_norm(A.bfloat16(), B.bfloat16(), 2.0) == pytest.approx(
        float((B.bfloat16().double() @ A.bfloat16().double() * 2).square().sum()), rel=1e-12
    )
